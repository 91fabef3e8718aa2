//! `--kernel`: tperf over the kernel's TCP sockets, the far end of tpa's
//! tests and the baseline of its benchmarks.
//!
//! Each worker thread runs one event loop: non-blocking sockets on an
//! epoll instance (through mio, edge-triggered), driving the sans-IO
//! sessions of [`crate::session`] and [`crate::control`]. One loop per
//! worker rather than a thread per connection: `-c 1000 -w 2` is two
//! threads, as in the tpa backend to come (a worker polls its stack), and
//! the CPU per transaction is not that of a thousand threads switching.

mod client;
pub mod congestion;
mod server;

pub use client::{run_client, ClientError};
pub use server::{run_server, ServerError};

use crate::session::Failure;

/// What tperf sets on the kernel's sockets beyond its defaults.
///
/// ```
/// let options = tpa_tperf::kernel::SocketOptions { congestion: Some("cubic".into()) };
/// assert_eq!(options.congestion.as_deref(), Some("cubic"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// Every connection's congestion control ([`congestion::set`]);
    /// `None`: the network namespace's default.
    pub congestion: Option<String>,
}

impl SocketOptions {
    /// The stack and its options, for the lines tperf prints:
    /// `kernel sockets` or `kernel sockets, cubic`.
    pub fn describe(&self) -> String {
        match &self.congestion {
            Some(cc) => format!("kernel sockets, {cc}"),
            None => "kernel sockets".to_owned(),
        }
    }

    /// Sets the options on `sock`; the error names the option.
    pub(crate) fn apply(&self, sock: &impl std::os::fd::AsFd) -> std::io::Result<()> {
        if let Some(cc) = &self.congestion {
            congestion::set(sock, cc).map_err(|e| {
                std::io::Error::new(e.kind(), format!("congestion control {cc}: {e}"))
            })?;
        }
        Ok(())
    }

    /// A non-blocking connect to `addr` from a socket that took the
    /// options before its SYN (see [`congestion`]).
    pub(crate) fn connect(
        &self,
        addr: std::net::SocketAddr,
    ) -> std::io::Result<mio::net::TcpStream> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        self.apply(&socket)?;
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        Ok(mio::net::TcpStream::from_std(socket.into()))
    }
}

/// Reads, and writes, one connection may do in a turn before the others
/// get theirs (each: a stream one way must not starve the other way).
const OPS_PER_TURN: u32 = 64;
/// Bytes read at once.
const READ_BUF: usize = 128 << 10;

/// What a turn on a connection ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Every read and write would block: wait for the next event.
    Idle,
    /// Out of this turn's operations: another turn soon, without an event.
    Busy,
    /// The connection ended cleanly.
    Finished,
}

/// A socket call's error, as a failure naming the call.
fn io_failure(call: &str, e: &std::io::Error) -> Failure {
    Failure::Io(format!("{call}: {e}"))
}
