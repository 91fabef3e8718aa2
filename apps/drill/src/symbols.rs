//! The symbolic constants scripts write (`SOCK_STREAM`, `POLLIN`,
//! `EAGAIN`), with Linux's values.

/// The value of constant `name`.
pub fn value(name: &str) -> Option<i64> {
    let v = match name {
        "AF_INET" | "PF_INET" => libc::AF_INET,
        "AF_INET6" | "PF_INET6" => libc::AF_INET6,
        "SOCK_STREAM" => libc::SOCK_STREAM,
        "SOCK_DGRAM" => libc::SOCK_DGRAM,
        "SOCK_NONBLOCK" => libc::SOCK_NONBLOCK,
        "SOCK_CLOEXEC" => libc::SOCK_CLOEXEC,
        "IPPROTO_TCP" => libc::IPPROTO_TCP,
        "IPPROTO_UDP" => libc::IPPROTO_UDP,
        "IPPROTO_IP" => libc::IPPROTO_IP,
        "IPPROTO_IPV6" => libc::IPPROTO_IPV6,
        "SOL_SOCKET" => libc::SOL_SOCKET,
        "SOL_TCP" => libc::SOL_TCP,
        "SO_REUSEADDR" => libc::SO_REUSEADDR,
        "SO_REUSEPORT" => libc::SO_REUSEPORT,
        "SO_KEEPALIVE" => libc::SO_KEEPALIVE,
        "SO_LINGER" => libc::SO_LINGER,
        "SO_ERROR" => libc::SO_ERROR,
        "SO_SNDBUF" => libc::SO_SNDBUF,
        "SO_RCVBUF" => libc::SO_RCVBUF,
        "TCP_NODELAY" => libc::TCP_NODELAY,
        "TCP_MAXSEG" => libc::TCP_MAXSEG,
        "TCP_KEEPIDLE" => libc::TCP_KEEPIDLE,
        "TCP_KEEPINTVL" => libc::TCP_KEEPINTVL,
        "TCP_KEEPCNT" => libc::TCP_KEEPCNT,
        "TCP_CORK" => libc::TCP_CORK,
        "TCP_INFO" => libc::TCP_INFO,
        "TCP_CONGESTION" => libc::TCP_CONGESTION,
        "F_GETFL" => libc::F_GETFL,
        "F_SETFL" => libc::F_SETFL,
        "O_RDONLY" => libc::O_RDONLY,
        "O_WRONLY" => libc::O_WRONLY,
        "O_RDWR" => libc::O_RDWR,
        "O_NONBLOCK" => libc::O_NONBLOCK,
        "SHUT_RD" => libc::SHUT_RD,
        "SHUT_WR" => libc::SHUT_WR,
        "SHUT_RDWR" => libc::SHUT_RDWR,
        "POLLIN" => i32::from(libc::POLLIN),
        "POLLPRI" => i32::from(libc::POLLPRI),
        "POLLOUT" => i32::from(libc::POLLOUT),
        "POLLERR" => i32::from(libc::POLLERR),
        "POLLHUP" => i32::from(libc::POLLHUP),
        "POLLNVAL" => i32::from(libc::POLLNVAL),
        "POLLRDNORM" => i32::from(libc::POLLRDNORM),
        "POLLRDHUP" => i32::from(libc::POLLRDHUP),
        "MSG_DONTWAIT" => libc::MSG_DONTWAIT,
        "MSG_PEEK" => libc::MSG_PEEK,
        "MSG_WAITALL" => libc::MSG_WAITALL,
        "MSG_NOSIGNAL" => libc::MSG_NOSIGNAL,
        "MSG_MORE" => libc::MSG_MORE,
        "MSG_FASTOPEN" => libc::MSG_FASTOPEN,
        "MSG_ZEROCOPY" => libc::MSG_ZEROCOPY,
        "MSG_OOB" => libc::MSG_OOB,
        _ => return errno(name).map(i64::from),
    };
    Some(i64::from(v))
}

/// Errno `name`'s value.
pub fn errno(name: &str) -> Option<i32> {
    ERRNOS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Errno `v`'s name.
pub fn errno_name(v: i32) -> String {
    ERRNOS
        .iter()
        .find(|(_, x)| *x == v)
        .map_or_else(|| format!("errno {v}"), |(n, _)| (*n).to_string())
}

const ERRNOS: &[(&str, i32)] = &[
    ("EAGAIN", libc::EAGAIN),
    ("EWOULDBLOCK", libc::EWOULDBLOCK),
    ("EINPROGRESS", libc::EINPROGRESS),
    ("EALREADY", libc::EALREADY),
    ("EISCONN", libc::EISCONN),
    ("ENOTCONN", libc::ENOTCONN),
    ("ECONNREFUSED", libc::ECONNREFUSED),
    ("ECONNRESET", libc::ECONNRESET),
    ("ECONNABORTED", libc::ECONNABORTED),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("EPIPE", libc::EPIPE),
    ("EBADF", libc::EBADF),
    ("EINVAL", libc::EINVAL),
    ("EADDRINUSE", libc::EADDRINUSE),
    ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL),
    ("ENETUNREACH", libc::ENETUNREACH),
    ("EHOSTUNREACH", libc::EHOSTUNREACH),
    ("EMSGSIZE", libc::EMSGSIZE),
    ("ENOBUFS", libc::ENOBUFS),
    ("ENOPROTOOPT", libc::ENOPROTOOPT),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("EPERM", libc::EPERM),
    ("EFAULT", libc::EFAULT),
];
