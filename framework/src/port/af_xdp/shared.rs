//! [`KernelShare`]: the AF_XDP port's answer to [`SharedHost`]: ports
//! reach tpa's XDP filter, neighbours come from the kernel's table.
//!
//! A neighbour tpa does not know is resolved by the kernel: tpa sends a
//! zero-length UDP datagram from a kernel socket bound to the interface
//! to the neighbour's discard port (9). Sending is what makes the kernel
//! resolve (a `connect` alone looks up the route, not the neighbour); an
//! `RTM_NEWNEIGH` with `NUD_INCOMPLETE` is refused by kernels that do not
//! resolve on request, and a ping needs a raw socket. The datagram costs
//! the neighbour one discarded packet (or one ICMP port unreachable, to
//! the kernel's socket: the kernel's ephemeral ports are outside tpa's).

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

use super::{kernel_neighbors, Transport as XdpTransport, XdpFilter};
use crate::app::Transport;
use crate::port::netdev::NetDev;
use crate::port::{PortError, SharedHost};
use crate::wire::MacAddr;

/// The discard port (RFC 863): where the datagram that makes the kernel
/// resolve a neighbour is sent.
const DISCARD_PORT: u16 = 9;

/// An AF_XDP port's [`SharedHost`]: tpa's XDP filter and the kernel's
/// neighbour table of one interface. From [`AfXdp::shared_host`](super::AfXdp::shared_host).
#[derive(Debug, Clone)]
pub struct KernelShare {
    filter: XdpFilter,
}

impl KernelShare {
    /// The share of `filter`'s interface.
    pub fn new(filter: XdpFilter) -> Self {
        KernelShare { filter }
    }
}

fn xdp_transport(t: Transport) -> XdpTransport {
    match t {
        Transport::Tcp => XdpTransport::Tcp,
        Transport::Udp => XdpTransport::Udp,
    }
}

impl SharedHost for KernelShare {
    fn open_port(&self, transport: Transport, port: u16) -> Result<(), PortError> {
        self.filter.open_port(xdp_transport(transport), port)
    }

    fn close_port(&self, transport: Transport, port: u16) -> Result<(), PortError> {
        self.filter.close_port(xdp_transport(transport), port)
    }

    fn neighbors(&self) -> Result<Vec<(IpAddr, MacAddr)>, PortError> {
        Ok(kernel_neighbors(self.filter.interface())?
            .into_iter()
            .map(|n| (n.ip, n.mac))
            .collect())
    }

    fn resolve(&self, ip: IpAddr) -> Result<(), PortError> {
        let name = self.filter.interface();
        let ifindex = NetDev::new(name)?.index()?;
        poke(name, ifindex, ip).map_err(|e| PortError::from_io(name, "resolving a neighbour", e))
    }
}

/// Sends the zero-length datagram to `ip`'s discard port from a socket
/// bound to `interface`.
fn poke(interface: &str, ifindex: i32, ip: IpAddr) -> io::Result<()> {
    let (any, to): (SocketAddr, SocketAddr) = match ip {
        IpAddr::V4(_) => (
            "0.0.0.0:0".parse().expect("literal"),
            SocketAddr::new(ip, DISCARD_PORT),
        ),
        IpAddr::V6(a) => (
            "[::]:0".parse().expect("literal"),
            SocketAddr::V6(SocketAddrV6::new(a, DISCARD_PORT, 0, ifindex as u32)),
        ),
    };
    let socket = UdpSocket::bind(any)?;
    let name = interface.as_bytes();
    // SAFETY: setsockopt reads `name.len()` bytes from `name`, which lives
    // across the call; the descriptor is the socket's, open.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    socket.send_to(&[], to).map(drop)
}
