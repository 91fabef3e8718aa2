//! One AF_XDP socket: its UMEM registration, its four rings mapped into
//! this process (fill, completion, RX, TX) and its bind to one queue.
//!
//! Every raw memory access of the port is here: the rings are shared
//! with the kernel, which produces into RX and completion and consumes
//! from fill and TX; each side owns one index of each ring and publishes
//! it with release ordering after writing (or reading) the entries.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::port::PortError;

/// How long a queue may stay busy before the bind gives up: the time the
/// kernel takes to free the queue of a socket closed just before.
const BUSY_GRACE: Duration = Duration::from_millis(500);

/// How the socket moves frames between the device and the UMEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindMode {
    /// Zero-copy when the driver supports it, copy otherwise (the kernel
    /// decides at bind; [`AfXdp::zero_copy`](super::AfXdp::zero_copy) tells).
    #[default]
    Auto,
    /// Copy mode always (`XDP_COPY`): the kernel copies each frame between
    /// its own buffers and the UMEM.
    Copy,
    /// Zero-copy or an error (`XDP_ZEROCOPY`): the device reads and writes
    /// the UMEM itself.
    ZeroCopy,
}

/// The memory the sockets share: the pool's region, registered once.
#[derive(Debug, Clone, Copy)]
pub(super) struct UmemArea {
    pub(super) base: NonNull<u8>,
    pub(super) len: usize,
    /// Bytes from the address put on the fill ring to the end of the area
    /// the kernel may write (a buffer's room).
    pub(super) chunk: u32,
}

/// Ring sizes (each a power of two).
#[derive(Debug, Clone, Copy)]
pub(super) struct RingSizes {
    pub(super) fill: u32,
    pub(super) completion: u32,
    pub(super) rx: u32,
    pub(super) tx: u32,
}

/// A ring mapped from the socket: two indexes, flags and the entries.
#[derive(Debug)]
pub(super) struct Ring<T> {
    map: NonNull<libc::c_void>,
    map_len: usize,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    desc: NonNull<T>,
    mask: u32,
    /// This side's index (the producer of fill/TX, the consumer of
    /// RX/completion), published with release ordering.
    local: u32,
}

// SAFETY: the ring is owned by one port value, used by one thread at a
// time; the mapping stays valid wherever that value moves.
unsafe impl<T> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    /// Maps ring `off` of socket `fd` at page offset `pgoff`.
    fn map(
        fd: BorrowedFd<'_>,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: libc::off_t,
    ) -> io::Result<Ring<T>> {
        let map_len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: a shared mapping of the socket's ring, whose size the
        // kernel checks against the ring it set up; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                pgoff,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = NonNull::new(p).ok_or_else(io::Error::last_os_error)?;
        let at = |o: u64| {
            // SAFETY: the kernel's offsets lie inside the mapping.
            unsafe { map.cast::<u8>().add(o as usize) }
        };
        let producer = at(off.producer).cast::<AtomicU32>();
        let consumer = at(off.consumer).cast::<AtomicU32>();
        // A new socket's rings are empty, every index 0.
        Ok(Ring {
            map,
            map_len,
            producer,
            consumer,
            flags: at(off.flags).cast(),
            desc: at(off.desc).cast(),
            mask: size - 1,
            local: 0,
        })
    }

    pub(super) fn size(&self) -> u32 {
        self.mask + 1
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: inside the live mapping, a u32 accessed atomically by
        // both sides.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as in `producer`.
        unsafe { self.consumer.as_ref() }
    }

    /// Whether the kernel asks to be woken (`XDP_RING_NEED_WAKEUP`).
    pub(super) fn needs_wakeup(&self) -> bool {
        // Our index store must be visible before the flag is read, as the
        // kernel sets the flag before it looks at our index once more.
        fence(Ordering::SeqCst);
        // SAFETY: as in `producer`.
        unsafe { self.flags.as_ref() }.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    // --- producer side (fill, TX) ---

    /// Entries this side may produce now.
    pub(super) fn free(&self) -> u32 {
        let cons = self.consumer().load(Ordering::Acquire);
        self.size() - self.local.wrapping_sub(cons)
    }

    /// Writes `entry` at the next free slot (the caller checked `free`);
    /// published by [`publish`](Self::publish).
    pub(super) fn push(&mut self, entry: T) {
        let i = (self.local & self.mask) as usize;
        // SAFETY: `i <= mask` lies inside the entry array, a slot the
        // kernel does not read until the producer index passes it.
        unsafe { self.desc.as_ptr().add(i).write_volatile(entry) };
        self.local = self.local.wrapping_add(1);
    }

    /// Hands the entries pushed so far to the kernel.
    pub(super) fn publish(&self) {
        self.producer().store(self.local, Ordering::Release);
    }

    // --- consumer side (RX, completion) ---

    /// Entries the kernel has produced and this side not consumed.
    pub(super) fn ready(&self) -> u32 {
        self.producer()
            .load(Ordering::Acquire)
            .wrapping_sub(self.local)
    }

    /// Reads the next produced entry (the caller checked `ready`).
    pub(super) fn pop(&mut self) -> T {
        let i = (self.local & self.mask) as usize;
        // SAFETY: `i <= mask` lies inside the entry array; the kernel wrote
        // it before publishing the producer index read in `ready`
        // (acquire), and does not rewrite it before we release it.
        let e = unsafe { self.desc.as_ptr().add(i).read_volatile() };
        self.local = self.local.wrapping_add(1);
        e
    }

    /// Gives consumed slots back to the kernel.
    pub(super) fn release(&self) {
        self.consumer().store(self.local, Ordering::Release);
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, no longer used.
        unsafe { libc::munmap(self.map.as_ptr(), self.map_len) };
    }
}

/// An AF_XDP socket bound to one queue, with its rings.
#[derive(Debug)]
pub(super) struct Xsk {
    pub(super) fill: Ring<u64>,
    pub(super) completion: Ring<u64>,
    pub(super) rx: Ring<libc::xdp_desc>,
    pub(super) tx: Ring<libc::xdp_desc>,
    pub(super) zero_copy: bool,
    // Last: the rings are unmapped before the socket closes.
    fd: OwnedFd,
}

fn setsockopt<T>(fd: BorrowedFd<'_>, opt: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live `T` of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            opt,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn getsockopt<T: Copy>(fd: BorrowedFd<'_>, opt: libc::c_int) -> io::Result<T> {
    let mut value = std::mem::MaybeUninit::<T>::zeroed();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            opt,
            value.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised, then (partly) written by the kernel: the
    // XDP option structs are plain integers, valid for any bytes.
    Ok(unsafe { value.assume_init() })
}

impl Xsk {
    /// Creates a socket on queue `queue` of interface `ifindex`.
    /// `umem`: register the area with this socket; otherwise share the
    /// UMEM of `share` (another socket of the same port).
    pub(super) fn open(
        name: &str,
        ifindex: u32,
        queue: u32,
        umem: &UmemArea,
        share: Option<BorrowedFd<'_>>,
        sizes: RingSizes,
        mode: BindMode,
    ) -> Result<Xsk, PortError> {
        let io = |op: &'static str| {
            let e = io::Error::last_os_error();
            move |_| PortError::from_io(name, op, e)
        };
        let wrap = |op: &'static str| move |e: io::Error| PortError::from_io(name, op, e);
        // SAFETY: plain socket(2); the result is checked.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EAFNOSUPPORT) => PortError::InvalidConfig {
                    name: name.to_owned(),
                    what: "the kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS)".into(),
                },
                _ => PortError::from_io(name, "socket(AF_XDP)", e),
            });
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let b = fd.as_fd();
        if share.is_none() {
            let reg = libc::xdp_umem_reg {
                addr: umem.base.as_ptr() as u64,
                len: umem.len as u64,
                chunk_size: umem.chunk,
                headroom: 0,
                flags: libc::XDP_UMEM_UNALIGNED_CHUNK_FLAG,
                tx_metadata_len: 0,
            };
            setsockopt(b, libc::XDP_UMEM_REG, &reg).map_err(|e| match e.raw_os_error() {
                // The pinned pages are charged to the user's locked memory.
                Some(libc::ENOBUFS) => PortError::Unprivileged {
                    name: name.to_owned(),
                    what: format!(
                        "the kernel cannot pin the {}-byte UMEM: the locked-memory limit (ulimit -l) is too small and the process lacks CAP_IPC_LOCK",
                        umem.len
                    ),
                },
                _ => PortError::from_io(name, "registering the UMEM (XDP_UMEM_REG)", e),
            })?;
        }
        setsockopt(b, libc::XDP_UMEM_FILL_RING, &sizes.fill).map_err(wrap("XDP_UMEM_FILL_RING"))?;
        setsockopt(b, libc::XDP_UMEM_COMPLETION_RING, &sizes.completion)
            .map_err(wrap("XDP_UMEM_COMPLETION_RING"))?;
        setsockopt(b, libc::XDP_RX_RING, &sizes.rx).map_err(wrap("XDP_RX_RING"))?;
        setsockopt(b, libc::XDP_TX_RING, &sizes.tx).map_err(wrap("XDP_TX_RING"))?;
        let off: libc::xdp_mmap_offsets =
            getsockopt(b, libc::XDP_MMAP_OFFSETS).map_err(wrap("XDP_MMAP_OFFSETS"))?;
        let fill = Ring::map(
            b,
            &off.fr,
            sizes.fill,
            libc::XDP_UMEM_PGOFF_FILL_RING as libc::off_t,
        )
        .map_err(wrap("mapping the fill ring"))?;
        let completion = Ring::map(
            b,
            &off.cr,
            sizes.completion,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING as libc::off_t,
        )
        .map_err(wrap("mapping the completion ring"))?;
        let rx = Ring::map(b, &off.rx, sizes.rx, libc::XDP_PGOFF_RX_RING)
            .map_err(wrap("mapping the RX ring"))?;
        let tx = Ring::map(b, &off.tx, sizes.tx, libc::XDP_PGOFF_TX_RING)
            .map_err(wrap("mapping the TX ring"))?;

        // A socket sharing another's UMEM takes that socket's mode and
        // need_wakeup setting: the kernel refuses any other flag with
        // XDP_SHARED_UMEM (EINVAL).
        let flags = if share.is_some() {
            libc::XDP_SHARED_UMEM
        } else {
            libc::XDP_USE_NEED_WAKEUP
                | match mode {
                    BindMode::Auto => 0,
                    BindMode::Copy => libc::XDP_COPY,
                    BindMode::ZeroCopy => libc::XDP_ZEROCOPY,
                }
        };
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: share.map_or(0, |s| s.as_raw_fd() as u32),
        };
        // A socket closed a moment ago frees its queue from a kernel work
        // item (the deferred release of its buffer pool), so a port opened
        // again at once (a restart) may find the queue busy for a few
        // milliseconds: "busy" is believed after BUSY_GRACE.
        let deadline = Instant::now() + BUSY_GRACE;
        let bound = loop {
            // SAFETY: `addr` is a live sockaddr_xdp of the size passed.
            let rc = unsafe {
                libc::bind(
                    b.as_raw_fd(),
                    (&addr as *const libc::sockaddr_xdp).cast(),
                    std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                break Ok(());
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EBUSY) || Instant::now() >= deadline {
                break Err(e);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Err(e) = bound {
            let name = name.to_owned();
            return Err(match e.raw_os_error() {
                Some(libc::EBUSY) => PortError::InvalidConfig {
                    name,
                    what: format!("queue {queue} is busy: another AF_XDP socket is bound to it"),
                },
                Some(libc::EINVAL) => PortError::InvalidConfig {
                    name,
                    what: format!("cannot bind an AF_XDP socket to queue {queue}: no such queue, or the interface is down ({e})"),
                },
                Some(libc::EOPNOTSUPP) if mode == BindMode::ZeroCopy => PortError::InvalidConfig {
                    name,
                    what: "the driver has no zero-copy AF_XDP support; use BindMode::Auto or Copy".into(),
                },
                _ => PortError::from_io(&name, "binding the AF_XDP socket", e),
            });
        }
        let opts: libc::xdp_options =
            getsockopt(b, libc::XDP_OPTIONS).map_err(io("XDP_OPTIONS"))?;
        Ok(Xsk {
            fill,
            completion,
            rx,
            tx,
            zero_copy: opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0,
            fd,
        })
    }

    /// Kicks the kernel: to fill the device from the fill ring (receive),
    /// or to send what the TX ring holds. Errors other than "try again"
    /// are returned (the caller counts them).
    pub(super) fn wakeup_tx(&self) -> io::Result<()> {
        // SAFETY: a zero-length send on our socket; no buffer is read.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS)
                | Some(libc::ENETDOWN) => Ok(()),
                _ => Err(e),
            };
        }
        Ok(())
    }

    /// Asks the kernel to pick up fill ring entries (`need_wakeup` on the
    /// fill ring).
    pub(super) fn wakeup_rx(&self) {
        // SAFETY: a zero-length, non-blocking receive; nothing is written.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }

    /// The kernel's counters of this socket (`XDP_STATISTICS`).
    pub(super) fn kernel_stats(&self) -> Option<libc::xdp_statistics> {
        getsockopt(self.fd.as_fd(), libc::XDP_STATISTICS).ok()
    }

    /// Entries of the TX ring.
    pub(super) fn tx_size(&self) -> u32 {
        self.tx.size()
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
