//! A kernel socket's congestion control (`TCP_CONGESTION`): what
//! `--congestion` sets on every connection, and what the report names.
//!
//! A network namespace other than the first may make only the algorithms
//! of the machine's `net.ipv4.tcp_allowed_congestion_control` its
//! default, but a socket of a process with `CAP_NET_ADMIN` may take any
//! algorithm the kernel has (`tcp_available_congestion_control`): the
//! per-socket option pins the algorithm where the namespace's default
//! cannot be changed.

use std::io;
use std::os::fd::AsRawFd;

/// The longest name the kernel keeps, its terminating NUL included
/// (`TCP_CA_NAME_MAX`).
const NAME_MAX: usize = 16;

/// Makes `name` (e.g. `cubic`) the congestion control of `sock`.
///
/// ```no_run
/// let sock = std::net::TcpStream::connect("192.0.2.1:4040")?;
/// tpa_tperf::kernel::congestion::set(&sock, "cubic")?;
/// assert_eq!(tpa_tperf::kernel::congestion::get(&sock)?, "cubic");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set(sock: &impl AsRawFd, name: &str) -> io::Result<()> {
    if name.is_empty() || name.len() >= NAME_MAX || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a congestion control's name"),
        ));
    }
    // SAFETY: `name` is valid for `name.len()` bytes for the call; the
    // kernel copies at most that many (it needs no terminating NUL).
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The congestion control `sock` runs.
pub fn get(sock: &impl AsRawFd) -> io::Result<String> {
    let mut name = [0u8; NAME_MAX];
    let mut len = NAME_MAX as libc::socklen_t;
    // SAFETY: `name` is writable for `len` bytes and `len` is a valid
    // `socklen_t` the kernel updates to what it wrote.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let name = &name[..(len as usize).min(NAME_MAX)];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(String::from_utf8_lossy(&name[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_takes_an_algorithm_and_names_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        // reno is in every kernel and in every namespace's allowed list.
        set(&listener, "reno").expect("reno");
        assert_eq!(get(&listener).expect("get"), "reno");
    }

    #[test]
    fn a_name_the_kernel_lacks_is_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let e = set(&listener, "no-such-cc").expect_err("unknown");
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
        let e = set(&listener, "a-name-far-too-long").expect_err("too long");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
