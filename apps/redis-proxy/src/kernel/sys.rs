//! The few system calls std and mio do not offer: a listen backlog,
//! SO_KEEPALIVE, daemonizing, and a stop flag set by SIGINT/SIGTERM.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by SIGINT or SIGTERM once `catch_stop_signals` ran.
pub static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Makes SIGINT and SIGTERM set `STOP` (the loop then exits cleanly).
pub fn catch_stop_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only stores to an atomic, which
        // is async-signal-safe; the function pointer lives forever.
        unsafe {
            libc::signal(signal, on_stop as *const () as libc::sighandler_t);
        }
    }
}

/// Re-listens `socket` with `backlog` (Linux updates a listening socket's
/// backlog on a second listen).
pub fn set_backlog(socket: &impl AsRawFd, backlog: u32) -> io::Result<()> {
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    // SAFETY: listen on a file descriptor the caller owns and keeps open.
    let rc = unsafe { libc::listen(socket.as_raw_fd(), backlog) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Turns on SO_KEEPALIVE.
pub fn set_keepalive(socket: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the option value points at a live c_int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Detaches from the terminal as nutcracker's `-d` does: fork, new
/// session, working directory `/`, standard streams on /dev/null.
pub fn daemonize() -> io::Result<()> {
    // SAFETY: called before any thread is started; daemon(3) forks and the
    // parent exits, the child continues with this process's memory.
    let rc = unsafe { libc::daemon(0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
