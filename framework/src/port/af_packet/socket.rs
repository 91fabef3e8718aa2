//! Packet sockets: creation, options, binding and fanout.

use std::ffi::c_int;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::port::steer::SteeringProgram;
use crate::port::PortError;

/// `ETH_P_ALL` in network byte order: every protocol.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

/// A raw `AF_PACKET` socket on one interface.
#[derive(Debug)]
pub(super) struct PacketSocket {
    fd: OwnedFd,
    iface: String,
}

impl PacketSocket {
    /// A raw packet socket that receives nothing until [`bind`](Self::bind)
    /// (protocol 0), so rings can be set up first.
    pub(super) fn new(iface: &str) -> Result<Self, PortError> {
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(PortError::from_io(
                iface,
                "socket(AF_PACKET)",
                io::Error::last_os_error(),
            ));
        }
        Ok(PacketSocket {
            // SAFETY: `fd` was just created and is owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            iface: iface.to_owned(),
        })
    }

    pub(super) fn raw(&self) -> c_int {
        self.fd.as_raw_fd()
    }

    /// `setsockopt(SOL_PACKET, opt, value)`.
    pub(super) fn set<T>(&self, opt: c_int, value: &T, op: &'static str) -> Result<(), PortError> {
        // SAFETY: `value` points at `size_of::<T>()` readable bytes, the
        // layout the caller chose to match option `opt`.
        let rc = unsafe {
            libc::setsockopt(
                self.raw(),
                libc::SOL_PACKET,
                opt,
                (value as *const T).cast(),
                size_of::<T>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(PortError::from_io(
                &self.iface,
                op,
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// `getsockopt(SOL_PACKET, opt)` into a `T`.
    pub(super) fn get<T: Copy>(&self, opt: c_int, op: &'static str) -> Result<T, PortError> {
        let mut value = std::mem::MaybeUninit::<T>::zeroed();
        let mut len = size_of::<T>() as libc::socklen_t;
        // SAFETY: `value` has room for `len` bytes; the kernel writes at most
        // that many and reports how many.
        let rc = unsafe {
            libc::getsockopt(
                self.raw(),
                libc::SOL_PACKET,
                opt,
                value.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(PortError::from_io(
                &self.iface,
                op,
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: zero-initialised, then (partly) filled by the kernel; the
        // callers only use plain-integer `T`s, for which any bytes are valid.
        Ok(unsafe { value.assume_init() })
    }

    /// Binds to interface `ifindex`. With `receive`, for every protocol
    /// (`ETH_P_ALL`); without, for none (a transmit-only socket).
    pub(super) fn bind(&self, ifindex: c_int, receive: bool) -> Result<(), PortError> {
        // SAFETY: `sockaddr_ll` is a plain C struct; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = if receive { ETH_P_ALL_BE } else { 0 };
        sll.sll_ifindex = ifindex;
        // SAFETY: `sll` is a valid `sockaddr_ll` of the length given.
        let rc = unsafe {
            libc::bind(
                self.raw(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                // A device that vanished between lookup and bind.
                Some(libc::ENODEV) | Some(libc::ENXIO) => PortError::NoSuchDevice {
                    name: self.iface.clone(),
                },
                _ => PortError::from_io(&self.iface, "bind(AF_PACKET)", err),
            });
        }
        Ok(())
    }

    /// Puts the interface in promiscuous mode for as long as the socket
    /// lives.
    pub(super) fn add_promiscuous(&self, ifindex: c_int) -> Result<(), PortError> {
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        self.set(
            libc::PACKET_ADD_MEMBERSHIP,
            &mreq,
            "PACKET_ADD_MEMBERSHIP(PROMISC)",
        )
    }

    /// Joins (or, with `group == None`, creates with a kernel-chosen unique
    /// id) a fanout group of `mode` (`PACKET_FANOUT_HASH` or
    /// `PACKET_FANOUT_EBPF`) that ignores outgoing frames. Returns the group
    /// id.
    pub(super) fn join_fanout(&self, group: Option<u16>, mode: u32) -> Result<u16, PortError> {
        let (id, flags) = match group {
            Some(id) => (u32::from(id), 0),
            None => (0, libc::PACKET_FANOUT_FLAG_UNIQUEID),
        };
        // The group's own hook receives for its members: without this flag
        // it would also see what tpa sends, whatever each socket asked.
        let flags = flags | libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
        let arg: u32 = id | ((mode | flags) << 16);
        self.set(libc::PACKET_FANOUT, &arg, "PACKET_FANOUT")
            .map_err(|e| match e {
                PortError::Io { name, source, .. }
                    if source.raw_os_error() == Some(libc::EINVAL) =>
                {
                    PortError::InvalidConfig {
                        name,
                        what: "fanout group exists with another mode or on another socket type"
                            .into(),
                    }
                }
                other => other,
            })?;
        let now: u32 = self.get(libc::PACKET_FANOUT, "getsockopt(PACKET_FANOUT)")?;
        Ok((now & 0xffff) as u16)
    }

    /// Gives this socket's `PACKET_FANOUT_EBPF` group its steering program.
    pub(super) fn set_fanout_program(&self, prog: &SteeringProgram) -> Result<(), PortError> {
        let fd: libc::c_int = prog.fd().as_raw_fd();
        self.set(libc::PACKET_FANOUT_DATA, &fd, "PACKET_FANOUT_DATA")
    }

    /// Sends the frames described by `msgs` with one `sendmmsg(2)`, without
    /// waiting. Returns how many the kernel took (0 when it pushed back);
    /// `Err` when the first frame failed otherwise.
    pub(super) fn send_batch(&self, msgs: &mut [libc::mmsghdr]) -> Result<usize, io::Error> {
        loop {
            // SAFETY: every header points at iovecs, and they at frame bytes,
            // that the caller keeps alive and unchanged during the call; the
            // kernel only reads them and writes `msg_len` back.
            let rc = unsafe {
                libc::sendmmsg(
                    self.raw(),
                    msgs.as_mut_ptr(),
                    msgs.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if rc >= 0 {
                return Ok(rc as usize);
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => return Ok(0),
                _ => return Err(err),
            }
        }
    }

    /// Asks the kernel to transmit every frame marked in the TX ring,
    /// without waiting. `Ok(false)`: the device pushed back; try again.
    pub(super) fn kick_tx(&self) -> Result<bool, io::Error> {
        loop {
            // SAFETY: a zero-length send with no buffer and no address is how
            // a TX ring is flushed; nothing is read from user memory here.
            let rc = unsafe {
                libc::sendto(
                    self.raw(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
            if rc >= 0 {
                return Ok(true);
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => return Ok(false),
                _ => return Err(err),
            }
        }
    }
}
