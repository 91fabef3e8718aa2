//! The kernel's socket calls, each run on its own thread inside the
//! script's namespace, with its return value and errno.
//!
//! A script's call may block (`accept` before the SYN arrives, `read`
//! before the data, `connect` until the handshake ends): packetdrill then
//! goes on injecting the script's later packets and checks when the call
//! returned. [`Pending`] is that call in flight: [`Pending::wait`] gives its
//! [`Outcome`] if it ends before a deadline and leaves it running if not.
//!
//! Descriptors here are the process's real ones; the backend maps the
//! script's numbers onto them.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::time::Instant;

use super::netns::Namespace;

/// One socket call with the kernel's own argument values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// socket(domain, type, protocol).
    Socket {
        /// AF_INET or AF_INET6.
        domain: i32,
        /// SOCK_STREAM, possibly with SOCK_NONBLOCK.
        ty: i32,
        /// IPPROTO_TCP or 0.
        protocol: i32,
    },
    /// bind(fd, addr).
    Bind {
        /// The socket.
        fd: i32,
        /// The local address; an IPv4 address on an AF_INET6 socket must
        /// come mapped (`::ffff:a.b.c.d`).
        addr: SocketAddr,
    },
    /// listen(fd, backlog).
    Listen {
        /// The socket.
        fd: i32,
        /// The backlog.
        backlog: i32,
    },
    /// accept(fd, ...): returns the new descriptor.
    Accept {
        /// The listening socket.
        fd: i32,
    },
    /// connect(fd, addr).
    Connect {
        /// The socket.
        fd: i32,
        /// The peer.
        addr: SocketAddr,
    },
    /// read(fd, buf, len).
    Read {
        /// The socket.
        fd: i32,
        /// Bytes asked for.
        len: usize,
    },
    /// recv(fd, buf, len, flags).
    Recv {
        /// The socket.
        fd: i32,
        /// Bytes asked for.
        len: usize,
        /// MSG_* flags.
        flags: i32,
    },
    /// readv(fd, iov, n): one buffer per length.
    Readv {
        /// The socket.
        fd: i32,
        /// Each iovec's length.
        lens: Vec<usize>,
    },
    /// write(fd, buf, len) of `len` zero bytes.
    Write {
        /// The socket.
        fd: i32,
        /// Bytes to write.
        len: usize,
    },
    /// send(fd, buf, len, flags) of `len` zero bytes.
    Send {
        /// The socket.
        fd: i32,
        /// Bytes to send.
        len: usize,
        /// MSG_* flags.
        flags: i32,
    },
    /// writev(fd, iov, n) of zero bytes, one buffer per length.
    Writev {
        /// The socket.
        fd: i32,
        /// Each iovec's length.
        lens: Vec<usize>,
    },
    /// close(fd).
    Close {
        /// The descriptor.
        fd: i32,
    },
    /// shutdown(fd, how).
    Shutdown {
        /// The socket.
        fd: i32,
        /// SHUT_RD, SHUT_WR or SHUT_RDWR.
        how: i32,
    },
    /// setsockopt(fd, level, name, value).
    SetSockOpt {
        /// The socket.
        fd: i32,
        /// SOL_SOCKET, IPPROTO_TCP, ...
        level: i32,
        /// The option.
        name: i32,
        /// Its value.
        value: OptValue,
    },
    /// getsockopt(fd, level, name, buf, len).
    GetSockOpt {
        /// The socket.
        fd: i32,
        /// SOL_SOCKET, IPPROTO_TCP, ...
        level: i32,
        /// The option.
        name: i32,
        /// The buffer's length.
        len: usize,
    },
    /// fcntl(fd, F_GETFL).
    GetFl {
        /// The descriptor.
        fd: i32,
    },
    /// fcntl(fd, F_SETFL, flags).
    SetFl {
        /// The descriptor.
        fd: i32,
        /// The new flags (O_NONBLOCK, ...).
        flags: i32,
    },
    /// poll(fds, n, timeout).
    Poll {
        /// Each descriptor and the events asked for.
        fds: Vec<(i32, i16)>,
        /// Milliseconds; negative waits for ever.
        timeout_ms: i32,
    },
}

/// A socket option's value, as setsockopt takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptValue {
    /// An `int`.
    Int(i32),
    /// `struct linger`.
    Linger {
        /// l_onoff.
        onoff: i32,
        /// l_linger, seconds.
        linger: i32,
    },
    /// A string without its NUL (TCP_CONGESTION).
    Str(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

impl OptValue {
    fn to_bytes(&self) -> Vec<u8> {
        match self {
            OptValue::Int(v) => v.to_ne_bytes().to_vec(),
            OptValue::Linger { onoff, linger } => {
                let mut b = onoff.to_ne_bytes().to_vec();
                b.extend_from_slice(&linger.to_ne_bytes());
                b
            }
            OptValue::Str(s) => s.as_bytes().to_vec(),
            OptValue::Bytes(b) => b.clone(),
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The return value (-1 on error).
    pub ret: i64,
    /// errno when `ret` is -1.
    pub errno: Option<i32>,
    /// What the call handed back besides its return value.
    pub detail: Detail,
    /// When it returned.
    pub at: Instant,
}

/// What a call handed back besides its return value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// Nothing.
    None,
    /// The bytes read (read, recv, readv).
    Data(Vec<u8>),
    /// getsockopt's value, as many bytes as the kernel said.
    Opt(Vec<u8>),
    /// poll's revents, one per descriptor asked.
    Revents(Vec<i16>),
}

/// A call in flight on its own thread.
#[derive(Debug)]
pub struct Pending {
    rx: mpsc::Receiver<Outcome>,
    /// When the call started.
    pub started: Instant,
}

impl Pending {
    /// Starts `call` on a new thread inside `ns`.
    ///
    /// # Errors
    /// If the thread cannot start.
    pub fn start(ns: &Namespace, call: Call) -> io::Result<Pending> {
        let (tx, rx) = mpsc::channel();
        let ns = ns.clone();
        let started = Instant::now();
        std::thread::Builder::new()
            .name("drill-call".into())
            .spawn(move || {
                let outcome = match ns.enter() {
                    Ok(()) => execute(&call),
                    Err(e) => Outcome {
                        ret: -1,
                        errno: e.raw_os_error(),
                        detail: Detail::None,
                        at: Instant::now(),
                    },
                };
                // The backend may have given up on the call; nobody to tell.
                let _ = tx.send(outcome);
            })?;
        Ok(Pending { rx, started })
    }

    /// The call's outcome if it ends by `deadline`; `None` if it is still
    /// running then (it goes on; ask again later).
    pub fn wait(&self, deadline: Instant) -> Option<Outcome> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(timeout) {
            Ok(o) => Some(o),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Outcome {
                ret: -1,
                errno: Some(libc::EIO),
                detail: Detail::None,
                at: Instant::now(),
            }),
        }
    }
}

/// Runs `call` on the calling thread.
pub fn execute(call: &Call) -> Outcome {
    let (ret, detail) = perform(call);
    Outcome {
        ret: if ret < 0 { -1 } else { ret },
        errno: (ret < 0).then_some(-ret as i32),
        detail,
        at: Instant::now(),
    }
}

/// A syscall's return value, or minus errno when it failed: read at once,
/// before anything else can change errno.
fn sys(rc: i64) -> i64 {
    if rc < 0 {
        -i64::from(
            io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    } else {
        rc
    }
}

/// The return value (minus errno on failure) and the detail.
fn perform(call: &Call) -> (i64, Detail) {
    match call {
        Call::Socket {
            domain,
            ty,
            protocol,
        } => {
            // SAFETY: socket(2) takes integers only.
            let fd = unsafe { libc::socket(*domain, *ty, *protocol) };
            (sys(fd.into()), Detail::None)
        }
        Call::Bind { fd, addr } => {
            let (sa, len) = sockaddr_of(*fd, addr);
            // SAFETY: `sa` is a sockaddr_storage holding `len` valid bytes.
            let rc = unsafe { libc::bind(*fd, (&raw const sa).cast(), len) };
            (sys(rc.into()), Detail::None)
        }
        Call::Listen { fd, backlog } => {
            // SAFETY: listen(2) takes integers only.
            (
                sys(unsafe { libc::listen(*fd, *backlog) }.into()),
                Detail::None,
            )
        }
        Call::Accept { fd } => {
            // SAFETY: accept(2) with no address buffer.
            let rc = unsafe { libc::accept(*fd, std::ptr::null_mut(), std::ptr::null_mut()) };
            (sys(rc.into()), Detail::None)
        }
        Call::Connect { fd, addr } => {
            let (sa, len) = sockaddr_of(*fd, addr);
            // SAFETY: `sa` is a sockaddr_storage holding `len` valid bytes.
            let rc = unsafe { libc::connect(*fd, (&raw const sa).cast(), len) };
            (sys(rc.into()), Detail::None)
        }
        Call::Read { fd, len } => {
            let mut buf = vec![0u8; *len];
            // SAFETY: `buf` is valid for `len` bytes of writes.
            let n = unsafe { libc::read(*fd, buf.as_mut_ptr().cast(), buf.len()) };
            read_result(sys(n as i64), buf)
        }
        Call::Recv { fd, len, flags } => {
            let mut buf = vec![0u8; *len];
            // SAFETY: `buf` is valid for `len` bytes of writes.
            let n = unsafe { libc::recv(*fd, buf.as_mut_ptr().cast(), buf.len(), *flags) };
            read_result(sys(n as i64), buf)
        }
        Call::Readv { fd, lens } => {
            let total: usize = lens.iter().sum();
            let mut buf = vec![0u8; total];
            let iov = iovecs(&mut buf, lens);
            // SAFETY: each iovec points into `buf`, disjoint and in bounds.
            let n = unsafe { libc::readv(*fd, iov.as_ptr(), iov.len() as libc::c_int) };
            read_result(sys(n as i64), buf)
        }
        Call::Write { fd, len } => {
            let buf = vec![0u8; *len];
            // SAFETY: `buf` is valid for `len` bytes of reads.
            let n = unsafe { libc::write(*fd, buf.as_ptr().cast(), buf.len()) };
            (sys(n as i64), Detail::None)
        }
        Call::Send { fd, len, flags } => {
            let buf = vec![0u8; *len];
            // SAFETY: `buf` is valid for `len` bytes of reads.
            let n = unsafe { libc::send(*fd, buf.as_ptr().cast(), buf.len(), *flags) };
            (sys(n as i64), Detail::None)
        }
        Call::Writev { fd, lens } => {
            let total: usize = lens.iter().sum();
            let mut buf = vec![0u8; total];
            let iov = iovecs(&mut buf, lens);
            // SAFETY: each iovec points into `buf`, disjoint and in bounds.
            let n = unsafe { libc::writev(*fd, iov.as_ptr(), iov.len() as libc::c_int) };
            (sys(n as i64), Detail::None)
        }
        Call::Close { fd } => {
            // SAFETY: the backend owns the script's descriptors; closing one
            // the script names is the call under test.
            (sys(unsafe { libc::close(*fd) }.into()), Detail::None)
        }
        Call::Shutdown { fd, how } => {
            // SAFETY: shutdown(2) takes integers only.
            (
                sys(unsafe { libc::shutdown(*fd, *how) }.into()),
                Detail::None,
            )
        }
        Call::SetSockOpt {
            fd,
            level,
            name,
            value,
        } => {
            let bytes = value.to_bytes();
            // SAFETY: `bytes` is valid for its length for the call.
            let rc = unsafe {
                libc::setsockopt(
                    *fd,
                    *level,
                    *name,
                    bytes.as_ptr().cast(),
                    bytes.len() as libc::socklen_t,
                )
            };
            (sys(rc.into()), Detail::None)
        }
        Call::GetSockOpt {
            fd,
            level,
            name,
            len,
        } => {
            let mut buf = vec![0u8; *len];
            let mut got = *len as libc::socklen_t;
            // SAFETY: `buf` is valid for `got` bytes of writes, `got` for
            // one socklen_t.
            let rc =
                unsafe { libc::getsockopt(*fd, *level, *name, buf.as_mut_ptr().cast(), &mut got) };
            if rc < 0 {
                (sys(rc.into()), Detail::None)
            } else {
                buf.truncate(got as usize);
                (i64::from(rc), Detail::Opt(buf))
            }
        }
        Call::GetFl { fd } => {
            // SAFETY: fcntl(2) F_GETFL takes no pointer.
            (
                sys(unsafe { libc::fcntl(*fd, libc::F_GETFL) }.into()),
                Detail::None,
            )
        }
        Call::SetFl { fd, flags } => {
            // SAFETY: fcntl(2) F_SETFL takes an int.
            (
                sys(unsafe { libc::fcntl(*fd, libc::F_SETFL, *flags) }.into()),
                Detail::None,
            )
        }
        Call::Poll { fds, timeout_ms } => {
            let mut pfds: Vec<libc::pollfd> = fds
                .iter()
                .map(|&(fd, events)| libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                })
                .collect();
            // SAFETY: `pfds` holds `len` pollfds for the call.
            let rc = sys(unsafe {
                libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, *timeout_ms)
            }
            .into());
            let revents = pfds.iter().map(|p| p.revents).collect();
            (rc, Detail::Revents(revents))
        }
    }
}

fn read_result(n: i64, mut buf: Vec<u8>) -> (i64, Detail) {
    if n < 0 {
        return (n, Detail::None);
    }
    buf.truncate(n as usize);
    (n, Detail::Data(buf))
}

fn iovecs(buf: &mut [u8], lens: &[usize]) -> Vec<libc::iovec> {
    let mut iov = Vec::with_capacity(lens.len());
    let mut rest = buf;
    for &len in lens {
        let (head, tail) = rest.split_at_mut(len);
        iov.push(libc::iovec {
            iov_base: head.as_mut_ptr().cast(),
            iov_len: len,
        });
        rest = tail;
    }
    iov
}

/// `addr` as a sockaddr for socket `fd`: an IPv4 address on an AF_INET6
/// socket is given mapped, as packetdrill's ipv4-mapped-ipv6 mode does.
fn sockaddr_of(fd: i32, addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    let v6_socket = socket_domain(fd) == Some(libc::AF_INET6);
    let addr = match (addr, v6_socket) {
        (SocketAddr::V4(a), true) => SocketAddr::new(IpAddr::V6(a.ip().to_ipv6_mapped()), a.port()),
        _ => *addr,
    };
    // SAFETY: sockaddr_storage is plain old data; zeroes are valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for any
            // sockaddr_*; we write one whole sockaddr_in at its start.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin) };
            (ss, size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for one sockaddr_in6.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin6) };
            (ss, size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

/// The address family of socket `fd` (SO_DOMAIN), if it is one.
fn socket_domain(fd: i32) -> Option<i32> {
    let mut domain: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: one int and its length, valid for the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&raw mut domain).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(domain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn errno_comes_back() {
        let o = execute(&Call::Listen {
            fd: 1_000_000,
            backlog: 1,
        });
        assert_eq!((o.ret, o.errno), (-1, Some(libc::EBADF)));
    }

    #[test]
    fn a_blocking_accept_stays_pending_until_closed() {
        let ns = Namespace::new().unwrap();
        let socket = Pending::start(
            &ns,
            Call::Socket {
                domain: libc::AF_INET,
                ty: libc::SOCK_STREAM,
                protocol: 0,
            },
        )
        .unwrap();
        let fd = socket
            .wait(Instant::now() + Duration::from_secs(5))
            .unwrap();
        assert!(fd.ret >= 0, "{fd:?}");
        let fd = fd.ret as i32;
        let bind = execute(&Call::Bind {
            fd,
            addr: "127.0.0.1:8080".parse().unwrap(),
        });
        assert_eq!(bind.ret, 0, "{bind:?}");
        assert_eq!(execute(&Call::Listen { fd, backlog: 1 }).ret, 0);
        let accept = Pending::start(&ns, Call::Accept { fd }).unwrap();
        assert!(accept
            .wait(Instant::now() + Duration::from_millis(50))
            .is_none());
        // Shutting the listener down wakes the blocked accept with EINVAL.
        assert_eq!(
            execute(&Call::Shutdown {
                fd,
                how: libc::SHUT_RDWR
            })
            .ret,
            0
        );
        let o = accept
            .wait(Instant::now() + Duration::from_secs(5))
            .unwrap();
        assert_eq!((o.ret, o.errno), (-1, Some(libc::EINVAL)));
        assert_eq!(execute(&Call::Close { fd }).ret, 0);
    }

    #[test]
    fn options_round_trip() {
        let o = execute(&Call::Socket {
            domain: libc::AF_INET6,
            ty: libc::SOCK_STREAM,
            protocol: 0,
        });
        let fd = o.ret as i32;
        assert!(fd >= 0);
        let set = execute(&Call::SetSockOpt {
            fd,
            level: libc::IPPROTO_TCP,
            name: libc::TCP_NODELAY,
            value: OptValue::Int(1),
        });
        assert_eq!(set.ret, 0);
        let get = execute(&Call::GetSockOpt {
            fd,
            level: libc::IPPROTO_TCP,
            name: libc::TCP_NODELAY,
            len: 4,
        });
        assert_eq!(get.detail, Detail::Opt(1i32.to_ne_bytes().to_vec()));
        let fl = execute(&Call::GetFl { fd }).ret as i32;
        assert_eq!(fl & libc::O_NONBLOCK, 0);
        execute(&Call::SetFl {
            fd,
            flags: fl | libc::O_NONBLOCK,
        });
        assert_ne!(
            execute(&Call::GetFl { fd }).ret as i32 & libc::O_NONBLOCK,
            0
        );
        // Non-blocking accept on a non-listening socket: EINVAL.
        let o = execute(&Call::Accept { fd });
        assert_eq!(o.errno, Some(libc::EINVAL));
        assert_eq!(execute(&Call::Close { fd }).ret, 0);
    }
}
