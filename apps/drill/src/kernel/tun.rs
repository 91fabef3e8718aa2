//! A TUN device (IFF_TUN | IFF_NO_PI): whole IP packets in and out, the
//! wire between the script's remote side and the kernel's TCP.
//!
//! What the runner writes to it the kernel receives as if from the wire;
//! what the kernel routes out through it the runner reads, each packet with
//! the instant it was read (the matcher's timing is measured against it).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::netns::Namespace;

/// The largest packet read: the device's MTU stays at 1500, but a script
/// may raise it and the kernel never sends more than 64 KiB.
const MAX_PACKET: usize = 65536;

/// An open TUN device inside a namespace.
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
}

impl Tun {
    /// Creates TUN device `name` inside `ns` (down, no addresses).
    ///
    /// # Errors
    /// If /dev/net/tun is missing or the device cannot be made.
    pub fn create(ns: &Namespace, name: &str) -> io::Result<Tun> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface name {name:?} is empty or too long"),
            ));
        }
        let owned = name.to_owned();
        // The device is created in the namespace of the thread that asks.
        let fd = ns.within(move || open_tun(&owned))??;
        Ok(Tun {
            file: File::from(fd),
            name: name.to_owned(),
        })
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands `packet` (an IPv4 or IPv6 packet, checksums complete) to the
    /// kernel as if it came from the wire.
    ///
    /// # Errors
    /// The write's error (EINVAL for a packet the device refuses).
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        let n = (&self.file).write(packet)?;
        if n != packet.len() {
            return Err(io::Error::other(format!(
                "TUN took {n} of {} bytes",
                packet.len()
            )));
        }
        Ok(())
    }

    /// The next packet the kernel sends out through the device and the
    /// instant it was read, or `None` if none comes before `deadline`.
    ///
    /// # Errors
    /// poll(2)'s or read(2)'s error.
    pub fn recv(&self, deadline: Instant) -> io::Result<Option<(Vec<u8>, Instant)>> {
        loop {
            let mut buf = vec![0u8; MAX_PACKET];
            match (&self.file).read(&mut buf) {
                Ok(n) => {
                    let at = Instant::now();
                    buf.truncate(n);
                    return Ok(Some((buf, at)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.wait_readable(deadline - now)?;
        }
    }

    /// Drops every packet already queued; how many there were.
    ///
    /// # Errors
    /// read(2)'s error.
    pub fn drain(&self) -> io::Result<usize> {
        let mut n = 0;
        while self.recv(Instant::now())?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    fn wait_readable(&self, timeout: Duration) -> io::Result<()> {
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: ppoll(2) on one pollfd that lives across the call, with a
        // valid timeout and no signal mask.
        let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        Ok(())
    }
}

/// Opens /dev/net/tun non-blocking and attaches it to a new TUN interface
/// `name` in the calling thread's namespace.
fn open_tun(name: &str) -> io::Result<OwnedFd> {
    // SAFETY: open(2) of a NUL-terminated constant path; result checked.
    let raw = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` was just opened and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF takes a `struct ifreq *`, valid for the call.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TUNSETIFF,
            &mut req as *mut libc::ifreq,
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("TUNSETIFF {name}: {err}"),
        ));
    }
    Ok(fd)
}

/// A thread that reads every packet the kernel sends out through a
/// [`Tun`] as it comes, so each is stamped with the instant it left even
/// when the runner looks later; stops when dropped.
#[derive(Debug)]
pub struct Capture {
    rx: mpsc::Receiver<(Vec<u8>, Instant)>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the capture thread looks at its stop flag.
const CAPTURE_TICK: Duration = Duration::from_millis(20);

impl Capture {
    /// Starts reading `tun`.
    ///
    /// # Errors
    /// If the thread cannot start.
    pub fn start(tun: Arc<Tun>) -> io::Result<Capture> {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("drill-tun".into())
            .spawn(move || {
                prefer_this_thread();
                while !flag.load(Ordering::Relaxed) {
                    match tun.recv(Instant::now() + CAPTURE_TICK) {
                        Ok(Some(packet)) => {
                            if tx.send(packet).is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            eprintln!("tpa-drill: reading {}: {e}", tun.name());
                            return;
                        }
                    }
                }
            })?;
        Ok(Capture {
            rx,
            stop,
            thread: Some(thread),
        })
    }

    /// The oldest packet not yet taken, waiting until `deadline` for one.
    pub fn next(&self, deadline: Instant) -> Option<(Vec<u8>, Instant)> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Asks for real-time scheduling (SCHED_FIFO, the lowest priority) for
/// the calling thread, so a packet is read and stamped when it leaves
/// even on a busy machine; the thread only ever sleeps in ppoll between
/// packets. Without the privilege the thread stays as it was (the stamps
/// are then only as prompt as the scheduler makes them).
fn prefer_this_thread() {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: pthread_setschedparam on the calling thread with a valid
    // sched_param that lives across the call.
    let _ = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
}
