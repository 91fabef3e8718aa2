//! A kernel socket's congestion control (`TCP_CONGESTION`): what
//! `--congestion` sets on every connection, and what the report names.
//!
//! A network namespace other than the first may make only the algorithms
//! of the machine's `net.ipv4.tcp_allowed_congestion_control` its
//! default, but a socket of a process with `CAP_NET_ADMIN` may take any
//! algorithm the kernel has (`tcp_available_congestion_control`): the
//! per-socket option pins the algorithm where the namespace's default
//! cannot be changed. tperf's connecting sockets take it before their
//! SYN: set after, what the namespace's algorithm set up at the connect
//! stays (BBR's pacing of every segment on a timer, under any algorithm
//! after it).

use std::io;
use std::os::fd::AsFd;

use socket2::SockRef;

/// Makes `name` (e.g. `cubic`) the congestion control of `sock`.
///
/// ```
/// use tpa_tperf::kernel::congestion;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// congestion::set(&listener, "reno")?;
/// assert_eq!(congestion::get(&listener)?, "reno");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set(sock: &impl AsFd, name: &str) -> io::Result<()> {
    SockRef::from(sock).set_tcp_congestion(name.as_bytes())
}

/// The congestion control `sock` runs.
pub fn get(sock: &impl AsFd) -> io::Result<String> {
    let name = SockRef::from(sock).tcp_congestion()?;
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(String::from_utf8_lossy(&name[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_the_kernel_lacks_is_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let before = get(&listener).expect("get");
        let e = set(&listener, "no-such-cc").expect_err("unknown");
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
        assert_eq!(get(&listener).expect("get"), before);
    }
}
