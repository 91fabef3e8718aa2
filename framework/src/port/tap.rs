//! A Linux TAP device as a [`Port`]: the kernel is the peer.
//!
//! A TAP interface is a virtual Ethernet link with the Linux network stack on
//! one end and a file descriptor on the other. Frames the kernel sends out of
//! the interface are read from the descriptor by [`Tap::rx_burst`]; frames
//! written by [`Tap::tx_burst`] arrive at the kernel as if received from a
//! wire. It works on any Linux machine as root (or with `CAP_NET_ADMIN`),
//! needs no driver or hugepages, and is the default backend for trying tpa.
//!
//! # Two MAC addresses
//!
//! The interface the kernel sees (say `tap0`) has its own MAC address, set
//! with [`TapConfig::kernel_mac`]. tpa sits on the other side of the wire and
//! uses a different address, [`TapConfig::mac`], reported by
//! [`PortCaps::mac`]: frames tpa sends carry it as their source and the
//! kernel addresses its replies to it. Giving both ends the same address would
//! make the kernel drop tpa's frames as its own.
//!
//! # Cost
//!
//! One `read(2)` per received packet and one `write(2)`/`writev(2)` per sent
//! packet: the TAP character device has no batched interface. Every packet
//! is copied once by the kernel, into or out of a pool buffer.
//!
//! # Offloads
//!
//! By default the device offloads nothing ([`PortCaps::tx_offloads`] is
//! empty): the checksums and TCP segmentation a packet asks for in
//! [`Meta::tx`](crate::buf::Meta::tx) are done in software by
//! [`offload::transmit`] on the way out, each TSO segment in a buffer of
//! its own from the port's pool, and counted in [`Tap::offload_stats`].
//!
//! With [`TapConfig::offloads`] the device is opened with `IFF_VNET_HDR`:
//! every frame, both ways, starts with a [`virtio_net_hdr`](super::vnet).
//! On transmit the kernel finishes TCP and UDP checksums (`NEEDS_CSUM`)
//! and takes TCP super-segments of up to 64 KiB (`gso_type`, `gso_size`),
//! which its own stack receives whole, as if GRO had merged them, and
//! segments only if it forwards them: one `writev(2)` carries what took
//! forty. On receive (`TUNSETOFFLOAD` with `TUN_F_CSUM`) the kernel no
//! longer checksums what it sends tpa: frames marked `NEEDS_CSUM` or
//! `DATA_VALID` have their L4 checksum trusted
//! ([`ChecksumStatus::Good`]). It does
//! not send tpa super-segments (no `TUN_F_TSO4`/`TUN_F_TSO6`): every
//! received frame fits a buffer.
//!
//! # Queues
//!
//! With [`TapConfig::queues`] > 1 the device is created with
//! `IFF_MULTI_QUEUE`, one descriptor per queue; [`Tap::open_queues`] returns
//! one [`Tap`] per queue for one worker each. The kernel picks a queue for
//! each frame it sends to tpa; left to itself it uses a flow hash with a
//! per-boot secret key. With [`TapConfig::steered`] (the default) tpa
//! installs its [`SteeringProgram`] with `TUNSETSTEERINGEBPF` instead, so
//! [`Port::steering`] predicts the queue: TCP and UDP flows by the
//! symmetric Toeplitz hash of addresses and ports, every other frame on
//! queue 0 ([`Steering::Program`]). Steering covers one direction only,
//! kernel → tpa: frames tpa writes on any queue simply enter the kernel's
//! stack. It assumes tpa holds every queue of the device (the program's
//! answer is a queue's index in attach order).
//!
//! ```no_run
//! use tpa::buf::{Pool, PoolConfig};
//! use tpa::port::tap::{Tap, TapConfig};
//! use tpa::port::{Burst, Port};
//!
//! let pool = Pool::new(PoolConfig::default())?;
//! let mut tap = Tap::open(&TapConfig::new("tap0"), pool)?;
//! let mut rx: Burst<_> = Burst::new();
//! tap.rx_burst(&mut rx);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use arrayvec::ArrayVec;

use super::netdev::{self, NetDev};
use super::offload::{self, HwOffload, OffloadStats, TxDevice};
use super::steer::{Steering, SteeringProgram};
use super::vnet::{self, GsoType, VnetHeader};
use super::{Burst, Offloads, Port, PortCaps, PortError, RxWait};
use crate::buf::{ChecksumStatus, PacketBuf, Pool, PoolBuf};
use crate::wire::MacAddr;

/// Ethernet header plus one VLAN tag: what a frame adds to the MTU.
const MAX_L2_OVERHEAD: usize = 14 + 4;

/// The most segments a transmitted packet may have: enough for a 64 KiB
/// TCP super-segment in 2 KiB buffers; one more `iovec` carries the
/// `virtio_net_hdr`.
const MAX_SEGMENTS: usize = 48;

/// Whether [`Tap::open`] may create the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TapMode {
    /// Attach to the interface if it exists (a persistent TAP made with
    /// `ip tuntap add`), create it otherwise. A created interface disappears
    /// when its last queue is dropped.
    #[default]
    CreateOrAttach,
    /// Attach to an existing TAP interface; [`PortError::NoSuchDevice`] if
    /// there is none.
    AttachExisting,
}

/// How to open a TAP device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapConfig {
    /// The interface name (at most 15 bytes). Empty lets the kernel choose
    /// (`tap0`, `tap1`, …); [`PortCaps::name`] tells which.
    pub name: String,
    /// Create or only attach.
    pub mode: TapMode,
    /// The MAC address tpa uses on its side of the wire. `None` picks a
    /// random locally administered unicast address.
    pub mac: Option<MacAddr>,
    /// The MAC address to give the kernel's interface, if any.
    pub kernel_mac: Option<MacAddr>,
    /// The MTU to set on the interface, if any.
    pub mtu: Option<u16>,
    /// Queues (one descriptor each). More than one needs `IFF_MULTI_QUEUE`,
    /// which a persistent interface must have been created with.
    pub queues: u16,
    /// Bring the kernel's interface up (`IFF_UP`) once attached.
    pub up: bool,
    /// With several queues, steer frames to them with tpa's
    /// [`SteeringProgram`] (needs `CAP_BPF` or root); without, the kernel's
    /// unpredictable flow hash picks ([`Steering::Unknown`]).
    pub steered: bool,
    /// Open with `IFF_VNET_HDR` and let the kernel do TCP/UDP checksums
    /// both ways and TCP segmentation on transmit (see the module's
    /// "Offloads"). A persistent interface takes the flag, and the
    /// kernel's offloads, from whoever attaches last.
    pub offloads: bool,
}

impl TapConfig {
    /// A single-queue device named `name`, created if missing and brought
    /// up, with a random tpa-side MAC.
    pub fn new(name: impl Into<String>) -> Self {
        TapConfig {
            name: name.into(),
            mode: TapMode::CreateOrAttach,
            mac: None,
            kernel_mac: None,
            mtu: None,
            queues: 1,
            up: true,
            steered: true,
            offloads: false,
        }
    }
}

/// Counters of one TAP queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TapStats {
    /// Frames received and handed on.
    pub rx_packets: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Receive attempts stopped because the pool had no buffer.
    pub rx_no_buffer: u64,
    /// Frames dropped because they did not fit a buffer.
    pub rx_truncated: u64,
    /// `read(2)` failures other than "nothing to read", and frames whose
    /// `virtio_net_hdr` is unknown or asks for segmentation tpa did not
    /// offer to take.
    pub rx_errors: u64,
    /// Frames received with their L4 checksum trusted (`NEEDS_CSUM` or
    /// `DATA_VALID` in the `virtio_net_hdr`).
    pub rx_checksum_trusted: u64,
    /// Frames written to the kernel.
    pub tx_packets: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames the kernel refused (dropped and removed from the burst).
    pub tx_errors: u64,
    /// TCP super-segments handed to the kernel to cut (`gso_type` set):
    /// frames longer than the MTU.
    pub tx_gso_frames: u64,
}

/// What became of a frame written to the kernel.
enum Written {
    /// The kernel took it.
    Sent,
    /// The kernel refused it (counted); it is dropped.
    Refused,
    /// The device cannot take more now; retry later.
    Full,
}

/// One queue of a TAP device: a [`Port`] whose peer is the kernel.
#[derive(Debug)]
pub struct Tap {
    fd: OwnedFd,
    pool: Pool,
    caps: PortCaps,
    stats: TapStats,
    offload: OffloadStats,
    steering: Steering,
    /// Frames carry a `virtio_net_hdr` (`IFF_VNET_HDR`).
    vnet: bool,
}

impl Tap {
    /// Opens a single-queue TAP device (`config.queues` must be 1; see
    /// [`open_queues`](Self::open_queues)). Received frames go into buffers
    /// from `pool`, which must hold a full frame (MTU + 18 bytes) after its
    /// headroom.
    pub fn open(config: &TapConfig, pool: Pool) -> Result<Tap, PortError> {
        if config.queues != 1 {
            return Err(PortError::InvalidConfig {
                name: config.name.clone(),
                what: format!(
                    "Tap::open drives one queue but {} were asked; use Tap::open_queues",
                    config.queues
                ),
            });
        }
        let mut queues = Self::open_queues(config, pool)?;
        Ok(queues.remove(0))
    }

    /// Opens every queue of a TAP device, one [`Tap`] each, all receiving
    /// into buffers from `pool`.
    pub fn open_queues(config: &TapConfig, pool: Pool) -> Result<Vec<Tap>, PortError> {
        if config.queues == 0 {
            return Err(PortError::InvalidConfig {
                name: config.name.clone(),
                what: "a TAP device needs at least one queue".into(),
            });
        }
        if !config.name.is_empty() {
            netdev::validate_name(&config.name)?;
        }
        if config.mode == TapMode::AttachExisting {
            // TUNSETIFF would create it; check first.
            NetDev::new(&config.name)?.index()?;
        }
        let multi = config.queues > 1;
        let vnet = config.offloads;
        let (first, name) = attach_queue(&config.name, multi, vnet)?;
        let mut fds = vec![first];
        for _ in 1..config.queues {
            fds.push(attach_queue(&name, multi, vnet)?.0);
        }

        let dev = NetDev::new(&name)?;
        if let Some(mac) = config.kernel_mac {
            dev.set_mac(mac)?;
        }
        if let Some(mtu) = config.mtu {
            dev.set_mtu(mtu)?;
        }
        if config.up {
            dev.set_up(true)?;
        }
        let mtu = dev.mtu()?;
        let kernel_mac = dev.mac()?;
        let mac = match config.mac {
            Some(mac) => mac,
            None => random_local_mac(&name)?,
        };
        if mac == kernel_mac {
            return Err(PortError::InvalidConfig {
                name,
                what: format!("tpa's MAC {mac} equals the kernel interface's; they must differ"),
            });
        }
        check_buffer_room(&name, &pool, mtu)?;

        let queues = config.queues;
        let steering = if queues == 1 {
            Steering::Single
        } else if config.steered {
            let prog = SteeringProgram::load(queues)
                .map_err(|e| PortError::from_io(&name, "loading the steering program", e))?;
            set_steering_program(&fds[0], Some(&prog))
                .map_err(|e| PortError::from_io(&name, "TUNSETSTEERINGEBPF", e))?;
            Steering::Program { queues }
        } else {
            set_steering_program(&fds[0], None)
                .map_err(|e| PortError::from_io(&name, "TUNSETSTEERINGEBPF", e))?;
            Steering::Unknown
        };
        let (rx_offloads, tx_offloads) = if vnet {
            let rx = Offloads {
                ipv4_checksum: false,
                tcp_checksum: true,
                udp_checksum: true,
                tso: false,
            };
            (rx, Offloads { tso: true, ..rx })
        } else {
            (Offloads::default(), Offloads::default())
        };
        Ok(fds
            .into_iter()
            .enumerate()
            .map(|(queue, fd)| Tap {
                fd,
                pool: pool.clone(),
                caps: PortCaps {
                    name: name.clone(),
                    mac,
                    mtu: mtu.min(u32::from(u16::MAX)) as u16,
                    queues,
                    queue: queue as u16,
                    rx_offloads,
                    tx_offloads,
                    rss: queues > 1,
                    flow_rules: false,
                },
                stats: TapStats::default(),
                offload: OffloadStats::default(),
                steering: steering.clone(),
                vnet,
            })
            .collect())
    }

    /// This queue's counters.
    pub fn stats(&self) -> TapStats {
        self.stats
    }

    /// Counters of the transmit offload requests this queue carried out in
    /// software (all of them without [`TapConfig::offloads`]).
    pub fn offload_stats(&self) -> OffloadStats {
        self.offload
    }

    /// The interface name the kernel knows the device by.
    pub fn name(&self) -> &str {
        &self.caps.name
    }

    /// Reads one frame into a fresh buffer. `None`: nothing to read, no
    /// buffer or a read error (the last two counted).
    fn read_one(&mut self) -> Option<PoolBuf> {
        loop {
            let Some(mut buf) = self.pool.alloc_rx() else {
                self.stats.rx_no_buffer += 1;
                return None;
            };
            let room = buf.tailroom();
            let Ok(dst) = buf.append(room) else {
                return None;
            };
            let mut hdr = [0u8; vnet::LEN];
            let iov = [
                libc::iovec {
                    iov_base: hdr.as_mut_ptr().cast(),
                    iov_len: hdr.len(),
                },
                libc::iovec {
                    iov_base: dst.as_mut_ptr().cast(),
                    iov_len: dst.len(),
                },
            ];
            let iov = if self.vnet { &iov[..] } else { &iov[1..] };
            // SAFETY: each iovec is a writable slice (`hdr`, or `dst` of
            // `room` bytes owned by `buf`) valid for the call.
            let n = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_ptr(), iov.len() as i32) };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock => return None,
                    io::ErrorKind::Interrupted => continue,
                    _ => {
                        self.stats.rx_errors += 1;
                        return None;
                    }
                }
            }
            let mut n = n as usize;
            let mut trusted = false;
            if self.vnet {
                let header = (n >= vnet::LEN).then(|| VnetHeader::decode(&hdr)).flatten();
                match header {
                    Some(h) if h.gso_type == GsoType::None => trusted = h.checksum_trusted(),
                    _ => {
                        self.stats.rx_errors += 1;
                        continue;
                    }
                }
                n -= vnet::LEN;
            }
            if n >= room {
                // The frame may have been cut to the buffer: drop it.
                self.stats.rx_truncated += 1;
                continue;
            }
            if buf.trim_back(room - n).is_err() {
                return None;
            }
            let meta = buf.meta_mut();
            meta.rx_queue = self.caps.queue;
            if trusted {
                meta.l4_checksum = ChecksumStatus::Good;
                self.stats.rx_checksum_trusted += 1;
            }
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += n as u64;
            return Some(buf);
        }
    }
}

/// Writes one frame to the kernel, behind a `virtio_net_hdr` made from
/// what is left of its transmit request when `vnet`.
fn write_one(fd: &OwnedFd, buf: &PoolBuf, stats: &mut TapStats, vnet: bool) -> Written {
    let mut iov: ArrayVec<libc::iovec, { MAX_SEGMENTS + 1 }> = ArrayVec::new();
    let mut len = 0usize;
    let header = VnetHeader::for_request(buf);
    let header_bytes = header.encode();
    if vnet {
        iov.push(libc::iovec {
            iov_base: header_bytes.as_ptr() as *mut libc::c_void,
            iov_len: header_bytes.len(),
        });
    }
    for seg in buf.segments() {
        if iov
            .try_push(libc::iovec {
                iov_base: seg.as_ptr() as *mut libc::c_void,
                iov_len: seg.len(),
            })
            .is_err()
        {
            stats.tx_errors += 1;
            return Written::Refused;
        }
        len += seg.len();
    }
    loop {
        // SAFETY: every iovec points into `header_bytes` or a segment of
        // `buf`, which outlive the call; writev only reads them.
        let n = unsafe { libc::writev(fd.as_raw_fd(), iov.as_ptr(), iov.len() as i32) };
        if n >= 0 {
            stats.tx_packets += 1;
            stats.tx_bytes += len as u64;
            if vnet && header.gso_type != GsoType::None {
                stats.tx_gso_frames += 1;
            }
            return Written::Sent;
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock => return Written::Full,
            io::ErrorKind::Interrupted => continue,
            _ => {
                // A malformed or oversized frame, or the device went away.
                stats.tx_errors += 1;
                return Written::Refused;
            }
        }
    }
}

/// The raw transmit side of one TAP queue: one `writev(2)` per frame.
struct TapTx<'a> {
    fd: &'a OwnedFd,
    pool: &'a Pool,
    stats: &'a mut TapStats,
    offloads: Offloads,
    vnet: bool,
}

impl TxDevice<PoolBuf> for TapTx<'_> {
    fn tx_offloads(&self) -> Offloads {
        self.offloads
    }

    /// Leaves the L4 checksum and segmentation to the kernel
    /// ([`vnet::mark_for_kernel`]).
    fn mark_for_device(&mut self, buf: &mut PoolBuf, plan: &HwOffload) {
        vnet::mark_for_kernel(buf, plan);
    }

    fn send<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        let mut taken = 0;
        let mut sent = 0;
        for buf in tx.as_slice() {
            match write_one(self.fd, buf, self.stats, self.vnet) {
                Written::Sent => sent += 1,
                Written::Refused => {}
                Written::Full => break,
            }
            taken += 1;
        }
        tx.drain_front(taken);
        sent
    }

    fn alloc_segment(&mut self) -> Option<PoolBuf> {
        self.pool.alloc()
    }

    /// `writev` gathers up to this many segments per frame.
    fn max_segments(&self) -> usize {
        MAX_SEGMENTS
    }
}

impl Port for Tap {
    type Buf = PoolBuf;

    /// Reads frames until the kernel has no more, the burst is full or the
    /// pool is empty.
    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<PoolBuf, N>) -> usize {
        let mut n = 0;
        while !rx.is_full() {
            let Some(buf) = self.read_one() else { break };
            rx.push(buf);
            n += 1;
        }
        n
    }

    /// Writes frames from the front of `tx` until the kernel pushes back
    /// (`EAGAIN`); those stay in `tx`. A frame the kernel refuses outright
    /// (malformed, too large, interface gone) is dropped and counted in
    /// [`TapStats::tx_errors`]. Transmit requests in `Meta::tx` are carried
    /// out in software first ([`offload::transmit`]). Returns how many were
    /// sent (a segmented packet counts once).
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        let mut dev = TapTx {
            fd: &self.fd,
            pool: &self.pool,
            stats: &mut self.stats,
            offloads: self.caps.tx_offloads,
            vnet: self.vnet,
        };
        offload::transmit(&mut dev, tx, &mut self.offload)
    }

    fn pool(&self) -> &crate::buf::Pool {
        &self.pool
    }

    fn caps(&self) -> &PortCaps {
        &self.caps
    }

    /// [`Steering::Program`] with tpa's steering program,
    /// [`Steering::Single`] for one queue, [`Steering::Unknown`] when the
    /// kernel's hash picks.
    fn steering(&self) -> Steering {
        self.steering.clone()
    }

    /// `ppoll(2)` on the queue's descriptor, which the kernel wakes when
    /// it queues a frame for it.
    fn wait_rx(&mut self, timeout: std::time::Duration) -> RxWait {
        netdev::wait_readable(self.fd.as_raw_fd(), timeout)
    }

    fn visit_counters(&mut self, visit: &mut dyn FnMut(&'static str, u64)) {
        let s = self.stats;
        visit("rx_packets", s.rx_packets);
        visit("rx_bytes", s.rx_bytes);
        visit("rx_no_buffer", s.rx_no_buffer);
        visit("rx_truncated", s.rx_truncated);
        visit("rx_errors", s.rx_errors);
        visit("tx_packets", s.tx_packets);
        visit("tx_bytes", s.tx_bytes);
        visit("tx_errors", s.tx_errors);
        visit("tx_gso_frames", s.tx_gso_frames);
    }
}

/// `TUNSETSTEERINGEBPF` (linux/if_tun.h).
const TUNSETSTEERINGEBPF: libc::Ioctl = libc::_IOR::<libc::c_int>(b'T' as u32, 224);

/// Makes `prog` choose the queue of every frame the kernel sends to the
/// device `fd` is a queue of (the device keeps its own reference); `None`
/// removes a program left by an earlier user of a persistent device.
fn set_steering_program(fd: &OwnedFd, prog: Option<&SteeringProgram>) -> io::Result<()> {
    let prog_fd: libc::c_int = prog.map_or(-1, |p| p.fd().as_raw_fd());
    // SAFETY: TUNSETSTEERINGEBPF reads one `int` (a program descriptor)
    // from the pointer, valid for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETSTEERINGEBPF, &prog_fd) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens `/dev/net/tun` and attaches it to TAP interface `name` (created if
/// missing). Returns the non-blocking descriptor and the interface name.
fn attach_queue(name: &str, multi_queue: bool, vnet: bool) -> Result<(OwnedFd, String), PortError> {
    let display = if name.is_empty() { "tap" } else { name };
    // SAFETY: open(2) of a NUL-terminated constant path; result checked.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENODEV) => PortError::InvalidConfig {
                name: display.to_owned(),
                what: "/dev/net/tun is missing: load the `tun` kernel module".into(),
            },
            _ => PortError::from_io(display, "open /dev/net/tun", err),
        });
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };

    let mut req = netdev::ifreq_for(name);
    let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
    if multi_queue {
        flags |= libc::IFF_MULTI_QUEUE;
    }
    if vnet {
        flags |= libc::IFF_VNET_HDR;
    }
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF takes a `struct ifreq *`; `req` is valid for the call
    // and the kernel writes the chosen name back into it.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TUNSETIFF,
            &mut req as *mut libc::ifreq,
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EINVAL) => PortError::InvalidConfig {
                name: display.to_owned(),
                what: "exists but is not a TAP device with matching flags \
                       (a TUN device, or single- vs multi-queue)"
                    .into(),
            },
            Some(libc::EBUSY) => PortError::Busy {
                name: display.to_owned(),
            },
            _ => PortError::from_io(display, "TUNSETIFF", err),
        });
    }
    {
        // With the header, checksums left unfinished may come to tpa (no
        // super-segments); without, none: a persistent device keeps the
        // offloads an earlier user set, and unfinished checksums without a
        // header saying so would look corrupt.
        let offload = if vnet { libc::TUN_F_CSUM } else { 0 };
        // SAFETY: TUNSETOFFLOAD takes its flags by value.
        let rc = unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                offload as libc::c_ulong,
            )
        };
        if rc < 0 {
            return Err(PortError::from_io(
                display,
                "TUNSETOFFLOAD",
                io::Error::last_os_error(),
            ));
        }
    }
    Ok((fd, netdev::name_of(&req)))
}

/// A random locally administered unicast MAC (`x2:xx:xx:xx:xx:xx`).
fn random_local_mac(name: &str) -> Result<MacAddr, PortError> {
    let mut b = [0u8; 6];
    // SAFETY: getrandom(2) writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        return Err(PortError::from_io(
            name,
            "getrandom for a MAC address",
            io::Error::last_os_error(),
        ));
    }
    b[0] = (b[0] & 0xfc) | 0x02;
    Ok(MacAddr(b))
}

/// Refuses a pool whose buffers cannot hold a full frame of the interface.
fn check_buffer_room(name: &str, pool: &Pool, mtu: u32) -> Result<(), PortError> {
    let need = mtu as usize + MAX_L2_OVERHEAD;
    let have = pool.buf_capacity() - pool.headroom();
    if have <= need {
        return Err(PortError::InvalidConfig {
            name: name.to_owned(),
            what: format!(
                "pool buffers hold {have} bytes after headroom; frames of MTU {mtu} need more than {need}"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tap_can_move_to_its_worker_thread() {
        fn send<T: Send>() {}
        send::<Tap>();
    }

    #[test]
    fn random_macs_are_local_unicast() {
        for _ in 0..32 {
            let m = random_local_mac("t").unwrap();
            assert!(m.is_unicast());
            assert_eq!(m.0[0] & 0x02, 0x02, "{m} is not locally administered");
        }
    }

    #[test]
    fn zero_queues_is_refused() {
        let pool = Pool::new(crate::buf::PoolConfig::default()).unwrap();
        let cfg = TapConfig {
            queues: 0,
            ..TapConfig::new("tpa-q0")
        };
        assert!(matches!(
            Tap::open_queues(&cfg, pool.clone()),
            Err(PortError::InvalidConfig { .. })
        ));
        crate::buf::BufferPool::assert_whole(&pool);
    }
}
