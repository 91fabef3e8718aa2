//! An anonymous network namespace for one script run.
//!
//! [`Namespace::new`] makes a namespace with `unshare(CLONE_NEWNET)` on a
//! short-lived thread and keeps only a descriptor of it: the namespace has
//! no name, never touches the root namespace's interfaces or sysctls, and
//! disappears with the last descriptor or socket that refers to it (the
//! runner's TUN device and sockets included), also when the run panics.
//!
//! Threads enter it with [`Namespace::enter`]; a thread's sockets, devices
//! and child processes then belong to it. Every thread the kernel backend
//! starts for a socket call enters it first.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::Arc;

/// A network namespace, alive while this (or a socket in it) is.
#[derive(Debug, Clone)]
pub struct Namespace {
    fd: Arc<File>,
}

impl Namespace {
    /// A fresh namespace with its loopback up.
    ///
    /// # Errors
    /// If the process may not create namespaces (it needs CAP_SYS_ADMIN),
    /// or `ip` cannot bring `lo` up.
    pub fn new() -> io::Result<Namespace> {
        let fd = std::thread::spawn(|| -> io::Result<File> {
            // SAFETY: unshare(2) with a flag only; it changes this
            // (short-lived) thread's network namespace and nothing else.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            File::open("/proc/thread-self/ns/net")
        })
        .join()
        .map_err(|_| io::Error::other("the namespace thread panicked"))??;
        let ns = Namespace { fd: Arc::new(fd) };
        ns.run(&["ip", "link", "set", "dev", "lo", "up"])?;
        Ok(ns)
    }

    /// Moves the calling thread into the namespace for good: its sockets,
    /// devices and child processes are then the namespace's.
    ///
    /// # Errors
    /// setns(2)'s error.
    pub fn enter(&self) -> io::Result<()> {
        // SAFETY: setns(2) on a namespace descriptor we hold open; it
        // changes only the calling thread's network namespace.
        if unsafe { libc::setns(self.fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Runs `f` on a new thread inside the namespace and returns what it
    /// returns (the caller's thread stays where it is).
    ///
    /// # Errors
    /// If the thread cannot enter the namespace, or `f` panics.
    pub fn within<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> io::Result<R> {
        let ns = self.clone();
        std::thread::spawn(move || -> io::Result<R> {
            ns.enter()?;
            Ok(f())
        })
        .join()
        .map_err(|_| io::Error::other("a thread inside the namespace panicked"))?
    }

    /// Runs `argv` inside the namespace and returns its standard output.
    ///
    /// # Errors
    /// If it cannot start or fails: the error carries its standard error.
    pub fn run(&self, argv: &[&str]) -> io::Result<String> {
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        self.within(move || -> io::Result<String> {
            let out = Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::null())
                .output()?;
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            } else {
                Err(io::Error::other(format!(
                    "{} ({}): {}",
                    argv.join(" "),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )))
            }
        })?
    }

    /// Sets sysctl `key` (dotted, e.g. `net.ipv4.tcp_sack`) to `value`
    /// inside the namespace. Only per-namespace keys (`net.*`) are
    /// accepted: any other would change the whole machine.
    ///
    /// # Errors
    /// A key outside `net.`, one the namespace lacks, or a value the
    /// kernel refuses.
    pub fn set_sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        let path = sysctl_path(key)?;
        let value = format!("{value}\n");
        self.within(move || std::fs::write(&path, value))?
            .map_err(|e| io::Error::new(e.kind(), format!("sysctl {key}: {e}")))
    }

    /// The value of sysctl `key` inside the namespace, trimmed.
    ///
    /// # Errors
    /// As [`set_sysctl`](Namespace::set_sysctl).
    pub fn sysctl(&self, key: &str) -> io::Result<String> {
        let path = sysctl_path(key)?;
        let text = self
            .within(move || std::fs::read_to_string(&path))?
            .map_err(|e| io::Error::new(e.kind(), format!("sysctl {key}: {e}")))?;
        Ok(text.trim().to_owned())
    }
}

/// `/proc/sys/...` for a dotted `net.*` key; refuses anything else (and
/// any path trickery).
fn sysctl_path(key: &str) -> io::Result<String> {
    let valid = key.starts_with("net.")
        && key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    if !valid {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("sysctl {key:?} is not a per-namespace net.* key"),
        ));
    }
    Ok(format!("/proc/sys/{}", key.replace('.', "/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_set_inside_stays_inside() {
        let ns = Namespace::new().expect("create a namespace (run as root)");
        let key = "net.ipv4.tcp_sack";
        let root = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_sack").unwrap();
        let flipped = if root.trim() == "0" { "1" } else { "0" };
        ns.set_sysctl(key, flipped).unwrap();
        assert_eq!(ns.sysctl(key).unwrap(), flipped);
        let root_after = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_sack").unwrap();
        assert_eq!(root_after, root, "the root namespace's sysctl changed");
    }

    #[test]
    fn commands_run_inside() {
        let ns = Namespace::new().unwrap();
        let links = ns.run(&["ip", "-br", "link"]).unwrap();
        // A fresh namespace has only its loopback.
        assert_eq!(links.lines().count(), 1, "{links}");
        assert!(links.starts_with("lo "), "{links}");
    }

    #[test]
    fn sysctl_keys_outside_net_are_refused() {
        let ns = Namespace::new().unwrap();
        for key in ["kernel.hostname", "net..x", "net.ipv4/../../kernel", "net"] {
            let err = ns.set_sysctl(key, "1").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{key}");
        }
    }
}
