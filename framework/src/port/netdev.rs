//! Linux network interfaces addressed by name: index, MAC address, MTU and
//! up/down state, read and set through `SIOC*IF*` ioctls, and the queues
//! in use (`SIOCETHTOOL`).
//!
//! Shared by the kernel-facing ports ([`tap`](super::tap),
//! [`af_packet`](super::af_packet)). Every call acts on the network
//! namespace of the thread that created the [`NetDev`].

use std::ffi::c_int;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{PortError, RxWait};
use crate::wire::MacAddr;

/// The longest interface name Linux accepts (`IFNAMSIZ` less the NUL).
pub const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// Checks that `name` can name a Linux network interface.
pub(crate) fn validate_name(name: &str) -> Result<(), PortError> {
    let bad = |what: &str| PortError::InvalidConfig {
        name: name.to_owned(),
        what: format!("invalid interface name: {what}"),
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad("longer than 15 bytes"));
    }
    if name == "." || name == ".." {
        return Err(bad("reserved"));
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
    {
        return Err(bad("contains '/', ':', NUL or whitespace"));
    }
    Ok(())
}

/// An `ifreq` naming `name` (already validated), the rest zeroed.
pub(crate) fn ifreq_for(name: &str) -> libc::ifreq {
    // SAFETY: `ifreq` is a plain C struct (a name array and a union of
    // integers, sockaddrs and a pointer); all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req
}

/// Reads the interface name the kernel wrote back into `req`.
pub(crate) fn name_of(req: &libc::ifreq) -> String {
    let bytes: Vec<u8> = req
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A network interface in the current network namespace, with a control
/// socket to query and configure it.
#[derive(Debug)]
pub(crate) struct NetDev {
    name: String,
    ctl: OwnedFd,
}

impl NetDev {
    /// Opens a control socket for interface `name`. The interface need not
    /// exist yet; the calls below report [`PortError::NoSuchDevice`] if it
    /// does not.
    pub(crate) fn new(name: &str) -> Result<Self, PortError> {
        validate_name(name)?;
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(PortError::from_io(
                name,
                "socket(AF_INET) for interface control",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `fd` is a freshly created descriptor owned by nobody else.
        let ctl = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(NetDev {
            name: name.to_owned(),
            ctl,
        })
    }

    /// Runs ioctl `request` with `req`, mapping failure to a [`PortError`].
    fn ioctl(
        &self,
        request: libc::c_ulong,
        req: &mut libc::ifreq,
        op: &'static str,
    ) -> Result<(), PortError> {
        // SAFETY: every request used in this module takes a `struct ifreq *`,
        // and `req` is a valid, exclusively borrowed `ifreq` for the call.
        let rc = unsafe {
            libc::ioctl(
                self.ctl.as_raw_fd(),
                request as libc::Ioctl,
                req as *mut libc::ifreq,
            )
        };
        if rc < 0 {
            return Err(PortError::from_io(
                &self.name,
                op,
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// The interface index (`SIOCGIFINDEX`).
    pub(crate) fn index(&self) -> Result<c_int, PortError> {
        let mut req = ifreq_for(&self.name);
        self.ioctl(libc::SIOCGIFINDEX, &mut req, "SIOCGIFINDEX")?;
        // SAFETY: SIOCGIFINDEX filled the `ifru_ifindex` member.
        Ok(unsafe { req.ifr_ifru.ifru_ifindex })
    }

    /// The interface's hardware address (`SIOCGIFHWADDR`).
    pub(crate) fn mac(&self) -> Result<MacAddr, PortError> {
        let mut req = ifreq_for(&self.name);
        self.ioctl(libc::SIOCGIFHWADDR, &mut req, "SIOCGIFHWADDR")?;
        // SAFETY: SIOCGIFHWADDR filled the `ifru_hwaddr` member.
        let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (dst, src) in mac.iter_mut().zip(sa.sa_data.iter()) {
            *dst = *src as u8;
        }
        Ok(MacAddr(mac))
    }

    /// Sets the interface's hardware address (`SIOCSIFHWADDR`).
    pub(crate) fn set_mac(&self, mac: MacAddr) -> Result<(), PortError> {
        let mut req = ifreq_for(&self.name);
        // SAFETY: writing plain integers into the `ifru_hwaddr` member of a
        // zeroed union; SIOCSIFHWADDR reads exactly that member.
        unsafe {
            req.ifr_ifru.ifru_hwaddr.sa_family = libc::ARPHRD_ETHER;
            for (dst, src) in req.ifr_ifru.ifru_hwaddr.sa_data.iter_mut().zip(mac.0) {
                *dst = src as libc::c_char;
            }
        }
        self.ioctl(libc::SIOCSIFHWADDR, &mut req, "SIOCSIFHWADDR")
    }

    /// The interface MTU (`SIOCGIFMTU`).
    pub(crate) fn mtu(&self) -> Result<u32, PortError> {
        let mut req = ifreq_for(&self.name);
        self.ioctl(libc::SIOCGIFMTU, &mut req, "SIOCGIFMTU")?;
        // SAFETY: SIOCGIFMTU filled the `ifru_mtu` member.
        let mtu = unsafe { req.ifr_ifru.ifru_mtu };
        Ok(mtu.max(0) as u32)
    }

    /// Sets the interface MTU (`SIOCSIFMTU`).
    pub(crate) fn set_mtu(&self, mtu: u16) -> Result<(), PortError> {
        let mut req = ifreq_for(&self.name);
        req.ifr_ifru.ifru_mtu = c_int::from(mtu);
        self.ioctl(libc::SIOCSIFMTU, &mut req, "SIOCSIFMTU")
    }

    /// Brings the interface up or down (`SIOCSIFFLAGS`).
    pub(crate) fn set_up(&self, up: bool) -> Result<(), PortError> {
        let mut flags = self.flags()?;
        if up {
            flags |= libc::IFF_UP as libc::c_short;
        } else {
            flags &= !(libc::IFF_UP as libc::c_short);
        }
        let mut req = ifreq_for(&self.name);
        req.ifr_ifru.ifru_flags = flags;
        self.ioctl(libc::SIOCSIFFLAGS, &mut req, "SIOCSIFFLAGS")
    }

    /// The queues the device uses now, as `ethtool -l` shows them
    /// (`ETHTOOL_GCHANNELS`); `None` when the driver does not say.
    #[cfg(feature = "af_xdp")]
    pub(crate) fn channels(&self) -> Result<Option<Channels>, PortError> {
        /// `struct ethtool_channels` (linux/ethtool.h).
        #[repr(C)]
        #[derive(Default)]
        struct EthtoolChannels {
            cmd: u32,
            max_rx: u32,
            max_tx: u32,
            max_other: u32,
            max_combined: u32,
            rx_count: u32,
            tx_count: u32,
            other_count: u32,
            combined_count: u32,
        }
        const ETHTOOL_GCHANNELS: u32 = 0x3c;
        let mut ch = EthtoolChannels {
            cmd: ETHTOOL_GCHANNELS,
            ..EthtoolChannels::default()
        };
        // SAFETY: `ch` is the `struct ethtool_channels` that
        // ETHTOOL_GCHANNELS reads and writes.
        if !unsafe { self.ethtool(&mut ch, "ETHTOOL_GCHANNELS")? } {
            return Ok(None);
        }
        Ok(Some(Channels {
            rx: ch.rx_count,
            tx: ch.tx_count,
            combined: ch.combined_count,
        }))
    }

    /// The name of the interface's driver, as `ethtool -i` shows it
    /// (`ETHTOOL_GDRVINFO`): `veth`, `tun`, `mlx5_core`, …; `None` when
    /// the device does not answer.
    pub(crate) fn driver(&self) -> Result<Option<String>, PortError> {
        /// `struct ethtool_drvinfo` (linux/ethtool.h).
        #[repr(C)]
        struct EthtoolDrvinfo {
            cmd: u32,
            driver: [u8; 32],
            version: [u8; 32],
            fw_version: [u8; 32],
            bus_info: [u8; 32],
            erom_version: [u8; 32],
            reserved2: [u8; 12],
            n_priv_flags: u32,
            n_stats: u32,
            testinfo_len: u32,
            eedump_len: u32,
            regdump_len: u32,
        }
        const ETHTOOL_GDRVINFO: u32 = 0x3;
        let mut info = EthtoolDrvinfo {
            cmd: ETHTOOL_GDRVINFO,
            driver: [0; 32],
            version: [0; 32],
            fw_version: [0; 32],
            bus_info: [0; 32],
            erom_version: [0; 32],
            reserved2: [0; 12],
            n_priv_flags: 0,
            n_stats: 0,
            testinfo_len: 0,
            eedump_len: 0,
            regdump_len: 0,
        };
        // SAFETY: `info` is the `struct ethtool_drvinfo` that
        // ETHTOOL_GDRVINFO reads and writes.
        if !unsafe { self.ethtool(&mut info, "ETHTOOL_GDRVINFO")? } {
            return Ok(None);
        }
        let len = info.driver.iter().position(|&b| b == 0).unwrap_or(32);
        Ok(Some(
            String::from_utf8_lossy(&info.driver[..len]).into_owned(),
        ))
    }

    /// Runs the ethtool command in `cmd`'s first field (`SIOCETHTOOL`);
    /// `false` when the driver does not support it, the error named
    /// `what` on any other failure.
    ///
    /// # Safety
    ///
    /// `T` must be the `struct ethtool_*` that the command reads and
    /// writes (the kernel writes that many bytes into `cmd`).
    unsafe fn ethtool<T>(&self, cmd: &mut T, what: &'static str) -> Result<bool, PortError> {
        let mut req = ifreq_for(&self.name);
        req.ifr_ifru.ifru_data = (cmd as *mut T).cast();
        // SAFETY: `req` points to `cmd`, live for the call and of the
        // command's struct (the caller's promise).
        let rc = unsafe {
            libc::ioctl(
                self.ctl.as_raw_fd(),
                libc::SIOCETHTOOL as libc::Ioctl,
                &mut req as *mut libc::ifreq,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EOPNOTSUPP) => Ok(false),
                _ => Err(PortError::from_io(&self.name, what, e)),
            };
        }
        Ok(true)
    }

    fn flags(&self) -> Result<libc::c_short, PortError> {
        let mut req = ifreq_for(&self.name);
        self.ioctl(libc::SIOCGIFFLAGS, &mut req, "SIOCGIFFLAGS")?;
        // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member.
        Ok(unsafe { req.ifr_ifru.ifru_flags })
    }
}

/// A device's channels in use (`ethtool -l`): queues that receive only,
/// transmit only, or both.
#[cfg(feature = "af_xdp")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Channels {
    pub(crate) rx: u32,
    pub(crate) tx: u32,
    pub(crate) combined: u32,
}

#[cfg(feature = "af_xdp")]
impl Channels {
    /// Queue ids a socket may bind to: the kernel takes the larger of the
    /// receive and transmit queue counts (combined channels count in both).
    pub(crate) fn queues(&self) -> u32 {
        self.rx.max(self.tx) + self.combined
    }
}

/// Waits up to `timeout` for `fd` to become readable with `ppoll(2)`
/// (microsecond timeouts, unlike `poll(2)`'s milliseconds): the
/// [`Port::wait_rx`](super::Port::wait_rx) of the ports that have a file descriptor.
pub(crate) fn wait_readable(fd: std::os::fd::RawFd, timeout: std::time::Duration) -> RxWait {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: one valid pollfd and one valid timespec for the duration of
    // the call; no signal mask.
    let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    match rc {
        0 => RxWait::TimedOut,
        // Readable, an error condition rx_burst will meet, or EINTR: let
        // the caller look.
        _ => RxWait::Ready,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(validate_name("eth0").is_ok());
        assert!(validate_name("a23456789012345").is_ok());
        for bad in ["", "a234567890123456", "a/b", "a:b", "a b", ".", ".."] {
            match validate_name(bad) {
                Err(PortError::InvalidConfig { name, .. }) => assert_eq!(name, bad),
                other => panic!("{bad:?}: expected InvalidConfig, got {other:?}"),
            }
        }
    }

    #[test]
    fn ifreq_round_trips_the_name() {
        let req = ifreq_for("veth-x1");
        assert_eq!(name_of(&req), "veth-x1");
    }

    #[test]
    fn loopback_is_queried() {
        // Every network namespace has `lo`, index 1, with MTU > 0.
        let lo = NetDev::new("lo").expect("control socket");
        assert!(lo.index().expect("index") > 0);
        assert!(lo.mtu().expect("mtu") > 0);
        assert_eq!(lo.mac().expect("mac"), MacAddr::ZERO);
        // The loopback driver reports no channels: asked, not an error.
        #[cfg(feature = "af_xdp")]
        assert_eq!(lo.channels().expect("channels"), None);
    }

    #[test]
    fn a_missing_interface_is_named() {
        let dev = NetDev::new("tpa-nonexist0").expect("control socket");
        match dev.index() {
            Err(PortError::NoSuchDevice { name }) => assert_eq!(name, "tpa-nonexist0"),
            other => panic!("expected NoSuchDevice, got {other:?}"),
        }
    }
}
