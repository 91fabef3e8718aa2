//! Errors reported on a socket, with their errno values.

use core::fmt;

/// Why an operation on a socket failed, or what went wrong with what it
/// sent; each has the errno a kernel socket would report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketError {
    /// Try again later: nothing to read, no room to write (EAGAIN).
    WouldBlock,
    /// The next hop never answered address resolution (EHOSTUNREACH).
    HostUnreachable,
    /// No route to the destination (ENETUNREACH).
    NetworkUnreachable,
    /// The peer's port is closed: ICMP port unreachable, or a TCP RST to a
    /// SYN (ECONNREFUSED).
    ConnectionRefused,
    /// The peer reset the connection (ECONNRESET).
    ConnectionReset,
    /// The connection timed out (ETIMEDOUT).
    TimedOut,
    /// Writing after the connection was shut down for writing (EPIPE).
    BrokenPipe,
    /// The datagram or segment is larger than the path can carry and
    /// fragmentation is refused (EMSGSIZE).
    MessageTooLong,
    /// The local address and port are already bound (EADDRINUSE).
    AddressInUse,
    /// The address is not one of this interface's (EADDRNOTAVAIL).
    AddressNotAvailable,
    /// No buffer for the data (ENOBUFS).
    NoBuffers,
    /// The socket handle is not (or no longer) valid (EBADF).
    BadSocket,
    /// A connect is in progress (EINPROGRESS).
    InProgress,
    /// The socket is not connected (ENOTCONN).
    NotConnected,
    /// An argument was invalid (EINVAL).
    InvalidArgument,
}

impl SocketError {
    /// The errno value a Linux socket reports for this error.
    ///
    /// ```
    /// use tpa::app::SocketError;
    /// assert_eq!(SocketError::HostUnreachable.errno(), 113);
    /// ```
    pub const fn errno(self) -> i32 {
        match self {
            SocketError::WouldBlock => 11,
            SocketError::HostUnreachable => 113,
            SocketError::NetworkUnreachable => 101,
            SocketError::ConnectionRefused => 111,
            SocketError::ConnectionReset => 104,
            SocketError::TimedOut => 110,
            SocketError::BrokenPipe => 32,
            SocketError::MessageTooLong => 90,
            SocketError::AddressInUse => 98,
            SocketError::AddressNotAvailable => 99,
            SocketError::NoBuffers => 105,
            SocketError::BadSocket => 9,
            SocketError::InProgress => 115,
            SocketError::NotConnected => 107,
            SocketError::InvalidArgument => 22,
        }
    }

    /// The errno's symbolic name.
    pub const fn name(self) -> &'static str {
        match self {
            SocketError::WouldBlock => "EAGAIN",
            SocketError::HostUnreachable => "EHOSTUNREACH",
            SocketError::NetworkUnreachable => "ENETUNREACH",
            SocketError::ConnectionRefused => "ECONNREFUSED",
            SocketError::ConnectionReset => "ECONNRESET",
            SocketError::TimedOut => "ETIMEDOUT",
            SocketError::BrokenPipe => "EPIPE",
            SocketError::MessageTooLong => "EMSGSIZE",
            SocketError::AddressInUse => "EADDRINUSE",
            SocketError::AddressNotAvailable => "EADDRNOTAVAIL",
            SocketError::NoBuffers => "ENOBUFS",
            SocketError::BadSocket => "EBADF",
            SocketError::InProgress => "EINPROGRESS",
            SocketError::NotConnected => "ENOTCONN",
            SocketError::InvalidArgument => "EINVAL",
        }
    }
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.errno())
    }
}

impl std::error::Error for SocketError {}

impl From<SocketError> for std::io::Error {
    fn from(e: SocketError) -> Self {
        std::io::Error::from_raw_os_error(e.errno())
    }
}
