//! The kernel's neighbour table, read over rtnetlink (`RTM_GETNEIGH`).
//!
//! Beside the kernel on one address, ARP and neighbour discovery are the
//! kernel's (tpa's XDP program passes them): tpa never sees the replies to
//! requests, its own or the kernel's. What the kernel has resolved is
//! where tpa learns its neighbours from ([`kernel_neighbors`]).

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::port::netdev::NetDev;
use crate::port::PortError;
use crate::wire::MacAddr;

const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// Entries whose address is usable: reachable, stale, delay, probe,
/// permanent (not incomplete, failed or noarp).
const NUD_USABLE: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x80;

/// One resolved neighbour of the kernel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelNeighbor {
    /// Its address.
    pub ip: IpAddr,
    /// Its link-layer address.
    pub mac: MacAddr,
}

/// The neighbours the kernel has resolved on `interface` (IPv4 and
/// IPv6), in the calling thread's network namespace.
pub fn kernel_neighbors(interface: &str) -> Result<Vec<KernelNeighbor>, PortError> {
    let ifindex = NetDev::new(interface)?.index()?;
    dump(ifindex).map_err(|e| PortError::from_io(interface, "RTM_GETNEIGH", e))
}

fn dump(ifindex: i32) -> io::Result<Vec<KernelNeighbor>> {
    // SAFETY: plain socket(2); checked below.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // nlmsghdr (16 bytes) + ndmsg (12 bytes).
    let mut req = [0u8; 28];
    req[0..4].copy_from_slice(&28u32.to_ne_bytes());
    req[4..6].copy_from_slice(&RTM_GETNEIGH.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes()); // sequence
    req[16] = libc::AF_UNSPEC as u8;
    req[20..24].copy_from_slice(&ifindex.to_ne_bytes());
    // SAFETY: sends `req`, live for the call, to the kernel (a zeroed
    // sockaddr would do too: no address means the kernel for a netlink
    // socket).
    if unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut msgs = &buf[..n as usize];
        while msgs.len() >= 16 {
            let len = u32::from_ne_bytes(msgs[0..4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(msgs[4..6].try_into().unwrap());
            if len < 16 || len > msgs.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "short netlink message",
                ));
            }
            match kind {
                k if k == libc::NLMSG_DONE as u16 => return Ok(out),
                k if k == libc::NLMSG_ERROR as u16 => {
                    let code = msgs
                        .get(16..20)
                        .map_or(0, |b| i32::from_ne_bytes(b.try_into().unwrap()));
                    return Err(io::Error::from_raw_os_error(-code));
                }
                RTM_NEWNEIGH => {
                    if let Some(n) = parse_neighbor(&msgs[16..len], ifindex) {
                        out.push(n);
                    }
                }
                _ => {}
            }
            msgs = &msgs[len.next_multiple_of(4).min(msgs.len())..];
        }
    }
}

/// An `ndmsg` and its attributes, if it is a usable entry of `ifindex`.
fn parse_neighbor(m: &[u8], ifindex: i32) -> Option<KernelNeighbor> {
    if m.len() < 12 {
        return None;
    }
    let family = i32::from(m[0]);
    let index = i32::from_ne_bytes(m[4..8].try_into().ok()?);
    let state = u16::from_ne_bytes(m[8..10].try_into().ok()?);
    if index != ifindex || state & NUD_USABLE == 0 {
        return None;
    }
    let (mut ip, mut mac) = (None, None);
    let mut attrs = &m[12..];
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes(attrs[0..2].try_into().ok()?));
        let kind = u16::from_ne_bytes(attrs[2..4].try_into().ok()?);
        if len < 4 || len > attrs.len() {
            break;
        }
        let value = &attrs[4..len];
        match (kind, family, value.len()) {
            (NDA_DST, libc::AF_INET, 4) => {
                ip = Some(IpAddr::from(<[u8; 4]>::try_from(value).ok()?))
            }
            (NDA_DST, libc::AF_INET6, 16) => {
                ip = Some(IpAddr::from(<[u8; 16]>::try_from(value).ok()?))
            }
            (NDA_LLADDR, _, 6) => mac = Some(MacAddr(value.try_into().ok()?)),
            _ => {}
        }
        attrs = &attrs[len.next_multiple_of(4).min(attrs.len())..];
    }
    Some(KernelNeighbor { ip: ip?, mac: mac? })
}
