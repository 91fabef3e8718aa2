//! The egress path: IP output → routing → neighbor resolution → Ethernet,
//! callable from a stage's `process` or `poll`, or from the application.
//!
//! A caller builds the transport header and data in a buffer (with
//! headroom for the IP and Ethernet headers: tpa's pools give 128 bytes)
//! and hands it to [`send_ip`] with an [`IpSend`] saying what the IP header
//! says. The path
//!
//! 1. checks the source is ours and of the destination's family;
//! 2. finds the next hop (`route.rs`: on-link, the gateway, or no route:
//!    ENETUNREACH);
//! 3. refuses a packet larger than the MTU (EMSGSIZE): fragmentation is not
//!    done, and IPv4 packets carry DF;
//! 4. writes the IP header (`ip.rs`: a fresh IPv4 ID, TTL or hop limit, the
//!    IPv4 header checksum computed here or asked of the port when it
//!    offloads it) and the Ethernet header (`ethernet.rs`), and sets the
//!    layer offsets a port needs to finish checksums the caller asked of it
//!    (`payload.meta_mut().tx`);
//! 5. resolves the next hop's MAC address (`neighbor.rs`): a known neighbor
//!    or a group address gets the frame at once ([`Sent::Queued`]); an
//!    unknown one is solicited (ARP request, neighbor solicitation) and the
//!    frame waits in its hold queue ([`Sent::Held`]) until the answer
//!    releases it, or, after the retries, is dropped and its owner socket
//!    gets an EHOSTUNREACH [`Event`](tpa::app::Event).
//!
//! Every refusal is counted in [`EgressCounters`]. The transport checksum
//! is the caller's: filled in software, or asked of the port.
//!
//! The state lives in the [`Egress`] part of the pipeline state, shared
//! with the ARP and NDP stages, which answer for its addresses, learn into
//! its neighbor caches, run their timers and send its announcements. See
//! doc/internals/egress.md.

mod ethernet;
mod ip;
mod neighbor;
mod path;
mod route;
mod solicit;
mod state;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tpa::app::{SocketError, SocketId};
use tpa::buf::{LayerOffsets, PacketBuf};
use tpa::port::PortCaps;
use tpa::stage::{Cx, PortCx};
use tpa::state::Part;
use tpa::wire::ipv4::IpProtocol;

pub use ethernet::{ipv4_multicast_mac, ipv6_multicast_mac, ETHERNET_LEN};
pub use ip::{IPV4_HEADER_LEN, IPV6_HEADER_LEN};
pub use path::{PathV4, PathV6};
pub use solicit::NDP_HOP_LIMIT;
pub use state::{Egress, EgressConfig, EgressCounters, Held, DEFAULT_NEIGHBORS};

use ethernet::{write_header, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use ip::{write_v4, write_v6, V4Header};
use neighbor::{resolve_and_send, transmit_addressed, transmit_to};
use path::{V4_HEADERS, V6_HEADERS};
use route::NextHop;

/// What the IP header of a packet handed to [`send_ip`] says; the
/// transport header and data are already in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpSend {
    /// Our address to send from (one of the interface's, see
    /// [`Egress::source_for`]).
    pub src: IpAddr,
    /// The destination, of the same family.
    pub dst: IpAddr,
    /// The transport protocol of the payload.
    pub protocol: IpProtocol,
    /// The TTL or hop limit; [`EgressConfig`]'s when `None`.
    pub hop_limit: Option<u8>,
    /// The socket sending, told EHOSTUNREACH if the packet waits for a
    /// neighbor that never answers.
    pub owner: Option<SocketId>,
}

/// What became of a packet handed to [`send_ip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// In the transmit queue: it leaves at this iteration's flush.
    Queued,
    /// Waiting in its neighbor's hold queue for an ARP reply or neighbor
    /// advertisement.
    Held,
}

/// Sends `payload` (the transport header and data, at `payload.data()`)
/// as an IP packet by `ip` through the [`Egress`] part of the state.
/// See [the module](self) for the steps.
///
/// Errors, each counted in [`EgressCounters`], the buffer dropped:
/// `InvalidArgument` (source and destination of different families),
/// `AddressNotAvailable` (the source is not ours), `NetworkUnreachable`
/// (no route), `MessageTooLong` (larger than the MTU), `NoBuffers` (no
/// headroom for the headers, the neighbor's hold queue is full, or the
/// transmit queue is full and the port takes nothing).
///
/// ```
/// use std::net::Ipv4Addr;
/// use tpa::buf::PacketBuf;
/// use tpa::stage::Cx;
/// use tpa::state::Part;
/// use tpa::wire::ipv4::IpProtocol;
/// use tpa_stages::egress::{send_ip, Egress, IpSend, Sent};
///
/// /// Sends a UDP datagram with checksum 0 (none) from port 9 to `dst`:9.
/// fn discard<B: PacketBuf, S: Part<Egress<B>>>(cx: &mut Cx<'_, B, S>, dst: Ipv4Addr) -> bool {
///     let Some(mut buf) = cx.alloc() else { return false };
///     match buf.append(8) {
///         Ok(udp) => udp.copy_from_slice(&[0, 9, 0, 9, 0, 8, 0, 0]),
///         Err(_) => return false,
///     }
///     let egress: &Egress<B> = cx.part();
///     let Some(src) = egress.source_for(dst.into()) else { return false };
///     let ip = IpSend { src, dst: dst.into(), protocol: IpProtocol::Udp, hop_limit: None, owner: None };
///     matches!(send_ip(cx, buf, ip), Ok(Sent::Queued | Sent::Held))
/// }
/// ```
#[inline]
pub fn send_ip<B: PacketBuf, S: Part<Egress<B>>>(
    cx: &mut Cx<'_, B, S>,
    payload: B,
    ip: IpSend,
) -> Result<Sent, SocketError> {
    let (state, port) = cx.split();
    state.part_mut().send_ip(port, payload, ip)
}

/// [`send_ip`] for a TCP segment over IPv4 from `src` to `dst` whose
/// header is `tcp_header` bytes long (the TCP output path's every
/// segment): the same steps, with no family to match and no header to
/// read back for the payload's offset. TTL from [`EgressConfig`].
///
/// # Errors
///
/// As [`send_ip`].
#[inline]
pub fn send_tcp_v4<B: PacketBuf, S: Part<Egress<B>>>(
    cx: &mut Cx<'_, B, S>,
    payload: B,
    (src, dst): (Ipv4Addr, Ipv4Addr),
    tcp_header: usize,
    owner: Option<SocketId>,
) -> Result<Sent, SocketError> {
    let (state, port) = cx.split();
    let what = V4Send {
        protocol: IpProtocol::Tcp,
        hop_limit: None,
        owner,
        payload_at: Some(tcp_header),
    };
    state.part_mut().send_v4(port, payload, (src, dst), what)
}

/// What [`Egress::send_v4`] needs of an [`IpSend`] besides the addresses,
/// and where the transport payload starts behind its header.
#[derive(Clone, Copy)]
struct V4Send {
    protocol: IpProtocol,
    hop_limit: Option<u8>,
    owner: Option<SocketId>,
    payload_at: Option<usize>,
}

/// Where the transport payload starts, relative to the transport header
/// at the start of `l4`: after UDP's 8 bytes, after TCP's data offset;
/// unknown for other protocols.
fn payload_offset(protocol: IpProtocol, l4: &[u8]) -> Option<usize> {
    match protocol {
        IpProtocol::Udp => Some(8),
        IpProtocol::Tcp => l4.get(12).map(|b| usize::from(b >> 4) * 4),
        _ => None,
    }
}

/// A port's abilities as a connection's way out uses them, read once per
/// flush ([`Egress::path_caps`]).
#[derive(Debug, Clone, Copy)]
pub struct PathCaps {
    /// The largest IP packet the port sends (the egress configuration's
    /// MTU, when smaller).
    pub mtu: usize,
    /// The port fills the IPv4 header checksum.
    pub ipv4_checksum: bool,
    /// The port finishes TCP checksums.
    pub tcp_checksum: bool,
}

/// The layer offsets of a frame of `headers` bytes of Ethernet and IP in
/// front of a transport header.
#[inline]
fn layers(ip_len: usize, payload: Option<usize>) -> LayerOffsets {
    let l4 = ETHERNET_LEN + ip_len;
    LayerOffsets {
        l2: 0,
        l3: ETHERNET_LEN as u16,
        l4: l4 as u16,
        payload: payload.map_or(LayerOffsets::UNSET, |p| (l4 + p) as u16),
    }
}

impl<B: PacketBuf> Egress<B> {
    /// [`send_ip`] for a caller that holds this part and the port side
    /// already (`cx.parts::<(Sockets, Egress<B>)>()`).
    #[inline]
    pub fn send_ip(
        &mut self,
        port: &mut PortCx<'_, B>,
        payload: B,
        ip: IpSend,
    ) -> Result<Sent, SocketError> {
        match (ip.src, ip.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let what = V4Send {
                    protocol: ip.protocol,
                    hop_limit: ip.hop_limit,
                    owner: ip.owner,
                    payload_at: payload_offset(ip.protocol, payload.data()),
                };
                self.send_v4(port, payload, (src, dst), what)
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => self.send_v6(port, payload, (src, dst), &ip),
            _ => {
                self.counters.bad_source += 1;
                Err(SocketError::InvalidArgument)
            }
        }
    }

    /// The largest IP packet a port of `caps` sends.
    #[inline]
    fn mtu(&self, caps: &PortCaps) -> usize {
        let port_mtu = caps.mtu;
        usize::from(self.config.mtu.map_or(port_mtu, |m| m.min(port_mtu)))
    }

    /// Whether an IP packet of `ip_header` bytes around `payload` may
    /// leave a port of `caps`: it fits the MTU, or it is a TCP
    /// super-segment (a TSO request) whose IP length field holds it and
    /// whose segments (`tcp_header` bytes of TCP header each) fit the MTU.
    #[inline]
    fn fits(
        &self,
        caps: &PortCaps,
        ip_header: usize,
        payload: &B,
        tcp_header: Option<usize>,
    ) -> bool {
        let len = ip_header + payload.total_len();
        let mtu = self.mtu(caps);
        if len <= mtu {
            return true;
        }
        // IPv4's length counts its header, IPv6's does not.
        let ip_length = if ip_header == IPV6_HEADER_LEN {
            payload.total_len()
        } else {
            len
        };
        match (payload.meta().tx.tso_mss(), tcp_header) {
            (Some(mss), Some(tcp)) => {
                ip_length <= usize::from(u16::MAX) && ip_header + tcp + usize::from(mss) <= mtu
            }
            _ => false,
        }
    }

    fn send_v4(
        &mut self,
        port: &mut PortCx<'_, B>,
        mut payload: B,
        (src, dst): (Ipv4Addr, Ipv4Addr),
        ip: V4Send,
    ) -> Result<Sent, SocketError> {
        let payload_at = ip.payload_at;
        let route = self.routes.route_v4(&self.iface, dst);
        // The route's source is ours; another must be checked.
        if route.src != Some(src) && !self.iface.owns_ipv4(src) {
            self.counters.bad_source += 1;
            return Err(SocketError::AddressNotAvailable);
        }
        let Some(hop) = route.hop else {
            self.counters.no_route += 1;
            return Err(SocketError::NetworkUnreachable);
        };
        let total_len = IPV4_HEADER_LEN + payload.total_len();
        // The port's caps, read once (a call through the port).
        let caps = port.caps();
        let offload = caps.tx_offloads.ipv4_checksum;
        if !self.fits(caps, IPV4_HEADER_LEN, &payload, payload_at) {
            self.counters.too_big += 1;
            return Err(SocketError::MessageTooLong);
        }
        let header = V4Header {
            src,
            dst,
            protocol: ip.protocol,
            ttl: ip.hop_limit.unwrap_or(self.config.ttl),
            ident: self.take_ip_id(),
            total_len: total_len as u16,
        };
        let Some((eth, ip_header)) = payload
            .prepend(ETHERNET_LEN + IPV4_HEADER_LEN)
            .ok()
            .and_then(|h| h.split_first_chunk_mut::<ETHERNET_LEN>())
            .and_then(|(eth, rest)| Some((eth, rest.first_chunk_mut::<IPV4_HEADER_LEN>()?)))
        else {
            self.counters.no_headroom += 1;
            return Err(SocketError::NoBuffers);
        };
        write_header(eth, self.iface.mac, ETHERTYPE_IPV4);
        write_v4(ip_header, &header, !offload);
        let meta = payload.meta_mut();
        meta.layers = layers(IPV4_HEADER_LEN, payload_at);
        if offload {
            meta.tx.request_ipv4_checksum();
        }
        resolve_and_send(
            &mut self.v4,
            &self.iface,
            &mut self.counters,
            port,
            self.shared_host.as_deref(),
            &mut self.wake_ns,
            hop,
            Held {
                frame: payload,
                owner: ip.owner,
            },
        )
    }

    /// [`send_tcp_v4`] for a connection that keeps its way out in `path`
    /// (built by its first segment, again after this egress path changed),
    /// with no owner: the same frame, its Ethernet and IPv4 headers
    /// copied from the path and patched (length, ID, the header checksum
    /// finished from the path's partial sum); the neighbor looked up for
    /// every frame as on the full path. A source or route the path cannot
    /// be built for goes the full way, which refuses and counts it. `path`
    /// must only ever carry `src` to `dst`.
    ///
    /// # Errors
    ///
    /// As [`send_ip`].
    #[inline]
    pub fn send_tcp_v4_on(
        &mut self,
        port: &mut PortCx<'_, B>,
        payload: B,
        path: &mut PathV4,
        (src, dst): (Ipv4Addr, Ipv4Addr),
        tcp_header: usize,
    ) -> Result<Sent, SocketError> {
        let owner = None;
        if !self.path_current(path) && !self.build_path_v4(path, (src, dst)) {
            let what = V4Send {
                protocol: IpProtocol::Tcp,
                hop_limit: None,
                owner,
                payload_at: Some(tcp_header),
            };
            return self.send_v4(port, payload, (src, dst), what);
        }
        debug_assert!(path.carries((src, dst)), "a path serves one connection");
        let caps = port.caps();
        let offload = caps.tx_offloads.ipv4_checksum;
        if !self.fits(caps, IPV4_HEADER_LEN, &payload, Some(tcp_header)) {
            self.counters.too_big += 1;
            return Err(SocketError::MessageTooLong);
        }
        let total_len = IPV4_HEADER_LEN + payload.total_len();
        self.send_on_path(port, payload, path, (tcp_header, total_len), offload)
    }

    /// What the output path's straight case reads of a port once per
    /// flush: see [`PathCaps`].
    #[inline]
    pub fn path_caps(&self, caps: &PortCaps) -> PathCaps {
        PathCaps {
            mtu: self.mtu(caps),
            ipv4_checksum: caps.tx_offloads.ipv4_checksum,
            tcp_checksum: caps.tx_offloads.tcp_checksum,
        }
    }

    /// Whether `path` was built by this egress path as it stands (else
    /// [`send_tcp_v4_on`](Self::send_tcp_v4_on) builds it again).
    #[inline]
    pub fn path_is_current(&self, path: &PathV4) -> bool {
        self.path_current(path)
    }

    /// [`send_tcp_v4_on`](Self::send_tcp_v4_on) for a single segment
    /// (`payload`: its TCP header of `tcp_header` bytes and data, no TSO
    /// request) on a `path` [current](Self::path_is_current) for this
    /// egress path, with the port's abilities read once (`caps`, from
    /// [`path_caps`](Self::path_caps)): the MTU check without a call
    /// into the port, then the same frame.
    ///
    /// # Errors
    ///
    /// As [`send_ip`].
    #[inline]
    pub fn send_tcp_v4_current(
        &mut self,
        port: &mut PortCx<'_, B>,
        payload: B,
        path: &mut PathV4,
        tcp_header: usize,
        caps: &PathCaps,
    ) -> Result<Sent, SocketError> {
        debug_assert!(self.path_current(path), "a path built by this egress path");
        debug_assert!(payload.meta().tx.tso_mss().is_none(), "a single segment");
        // `fits` for a packet without a TSO request: the MTU alone (the
        // length summed once, over the chain, for both).
        let total_len = IPV4_HEADER_LEN + payload.total_len();
        if total_len > caps.mtu {
            self.counters.too_big += 1;
            return Err(SocketError::MessageTooLong);
        }
        self.send_on_path(
            port,
            payload,
            path,
            (tcp_header, total_len),
            caps.ipv4_checksum,
        )
    }

    /// The rest of [`send_tcp_v4_on`](Self::send_tcp_v4_on) once the
    /// packet fits: the headers from `path`, the neighbor, the port;
    /// `tcp_header` the TCP header's length, `total_len` the IPv4
    /// packet's (the payload's and its header's).
    #[inline(always)]
    fn send_on_path(
        &mut self,
        port: &mut PortCx<'_, B>,
        mut payload: B,
        path: &mut PathV4,
        (tcp_header, total_len): (usize, usize),
        offload: bool,
    ) -> Result<Sent, SocketError> {
        let owner = None;
        let ident = self.take_ip_id();
        // The metadata first: a packet without headroom is dropped anyway.
        let meta = payload.meta_mut();
        meta.layers = layers(IPV4_HEADER_LEN, Some(tcp_header));
        if offload {
            meta.tx.request_ipv4_checksum();
        }
        let Some(headers) = payload
            .prepend(V4_HEADERS)
            .ok()
            .and_then(|h| h.first_chunk_mut::<V4_HEADERS>())
        else {
            self.counters.no_headroom += 1;
            return Err(SocketError::NoBuffers);
        };
        *headers = path.headers(total_len as u16, ident, !offload);
        // A neighbor in `lookup`'s common case (REACHABLE, in use): its
        // address in the headers already while the cache vouches for the
        // one kept with the path, else written beside them (and kept)
        // and the frame out here; any other through `resolve_and_send`,
        // whose lookup does the rest (the quick checks changed nothing).
        let hop = path.hop();
        if let NextHop::Neighbor(ip) = hop {
            let now_ns = port.now_ns();
            let addressed = self.v4.lookup_ticketed(ip, path.neighbor(), now_ns)
                || match self.v4.lookup_quick_ticket(ip, now_ns) {
                    Some((mac, ticket)) => {
                        headers[..6].copy_from_slice(&mac.octets()); // the destination
                        path.keep_neighbor(mac, ticket);
                        true
                    }
                    None => false,
                };
            if addressed {
                return transmit_addressed(&mut self.counters, port, payload);
            }
        }
        resolve_and_send(
            &mut self.v4,
            &self.iface,
            &mut self.counters,
            port,
            self.shared_host.as_deref(),
            &mut self.wake_ns,
            hop,
            Held {
                frame: payload,
                owner,
            },
        )
    }

    /// [`send_tcp_v4_on`](Self::send_tcp_v4_on) over IPv6: a TCP
    /// segment (`payload`: its header of `tcp_header` bytes and data)
    /// from `src` to `dst` on the connection's way out `path` (built by
    /// its first segment, again after this egress path changed), with no
    /// owner: the frame of [`send_ip`], its Ethernet and IPv6 headers
    /// copied from the path with the payload length patched in; the
    /// neighbor looked up for every frame as on the full path. A source
    /// or route the path cannot be built for goes the full way, which
    /// refuses and counts it. `path` must only ever carry `src` to `dst`.
    ///
    /// # Errors
    ///
    /// As [`send_ip`].
    #[inline]
    pub fn send_tcp_v6_on(
        &mut self,
        port: &mut PortCx<'_, B>,
        payload: B,
        path: &mut PathV6,
        (src, dst): (Ipv6Addr, Ipv6Addr),
        tcp_header: usize,
    ) -> Result<Sent, SocketError> {
        if !self.path6_current(path) && !self.build_path_v6(path, (src, dst)) {
            let ip = IpSend {
                src: src.into(),
                dst: dst.into(),
                protocol: IpProtocol::Tcp,
                hop_limit: None,
                owner: None,
            };
            return self.send_v6(port, payload, (src, dst), &ip);
        }
        debug_assert!(path.carries((src, dst)), "a path serves one connection");
        if !self.fits(port.caps(), IPV6_HEADER_LEN, &payload, Some(tcp_header)) {
            self.counters.too_big += 1;
            return Err(SocketError::MessageTooLong);
        }
        self.send_on_path_v6(port, payload, path, tcp_header)
    }

    /// Whether `path` was built by this egress path as it stands (else
    /// [`send_tcp_v6_on`](Self::send_tcp_v6_on) builds it again).
    #[inline]
    pub fn path6_is_current(&self, path: &PathV6) -> bool {
        self.path6_current(path)
    }

    /// [`send_tcp_v4_current`](Self::send_tcp_v4_current) over IPv6: a
    /// single segment on a `path` [current](Self::path6_is_current) for
    /// this egress path, the MTU from `caps`, then the frame of
    /// [`send_tcp_v6_on`](Self::send_tcp_v6_on).
    ///
    /// # Errors
    ///
    /// As [`send_ip`].
    #[inline]
    pub fn send_tcp_v6_current(
        &mut self,
        port: &mut PortCx<'_, B>,
        payload: B,
        path: &PathV6,
        tcp_header: usize,
        caps: &PathCaps,
    ) -> Result<Sent, SocketError> {
        debug_assert!(self.path6_current(path), "a path built by this egress path");
        debug_assert!(payload.meta().tx.tso_mss().is_none(), "a single segment");
        if IPV6_HEADER_LEN + payload.total_len() > caps.mtu {
            self.counters.too_big += 1;
            return Err(SocketError::MessageTooLong);
        }
        self.send_on_path_v6(port, payload, path, tcp_header)
    }

    /// The rest of [`send_tcp_v6_on`](Self::send_tcp_v6_on) once the
    /// packet fits: the headers from `path`, the neighbor, the port.
    #[inline(always)]
    fn send_on_path_v6(
        &mut self,
        port: &mut PortCx<'_, B>,
        mut payload: B,
        path: &PathV6,
        tcp_header: usize,
    ) -> Result<Sent, SocketError> {
        let payload_len = payload.total_len();
        let Some(headers) = payload
            .prepend(V6_HEADERS)
            .ok()
            .and_then(|h| h.first_chunk_mut::<V6_HEADERS>())
        else {
            self.counters.no_headroom += 1;
            return Err(SocketError::NoBuffers);
        };
        *headers = path.headers(payload_len as u16);
        payload.meta_mut().layers = layers(IPV6_HEADER_LEN, Some(tcp_header));
        let hop = path.hop();
        if let NextHop::Neighbor(ip) = hop {
            if let Some(mac) = self.v6.lookup_quick(ip, port.now_ns()) {
                return transmit_to(&mut self.counters, port, payload, mac);
            }
        }
        resolve_and_send(
            &mut self.v6,
            &self.iface,
            &mut self.counters,
            port,
            self.shared_host.as_deref(),
            &mut self.wake_ns,
            hop,
            Held {
                frame: payload,
                owner: None,
            },
        )
    }

    fn send_v6(
        &mut self,
        port: &mut PortCx<'_, B>,
        mut payload: B,
        (src, dst): (Ipv6Addr, Ipv6Addr),
        ip: &IpSend,
    ) -> Result<Sent, SocketError> {
        let route = self.routes.route_v6(&self.iface, dst);
        // The route's source is ours; another must be checked.
        if route.src != Some(src) && !self.iface.owns_ipv6(src) {
            self.counters.bad_source += 1;
            return Err(SocketError::AddressNotAvailable);
        }
        let Some(hop) = route.hop else {
            self.counters.no_route += 1;
            return Err(SocketError::NetworkUnreachable);
        };
        let payload_len = payload.total_len();
        let payload_at = payload_offset(ip.protocol, payload.data());
        if !self.fits(port.caps(), IPV6_HEADER_LEN, &payload, payload_at) {
            self.counters.too_big += 1;
            return Err(SocketError::MessageTooLong);
        }
        let hop_limit = ip.hop_limit.unwrap_or(self.config.hop_limit);
        let Some((eth, ip_header)) = payload
            .prepend(ETHERNET_LEN + IPV6_HEADER_LEN)
            .ok()
            .and_then(|h| h.split_first_chunk_mut::<ETHERNET_LEN>())
            .and_then(|(eth, rest)| Some((eth, rest.first_chunk_mut::<IPV6_HEADER_LEN>()?)))
        else {
            self.counters.no_headroom += 1;
            return Err(SocketError::NoBuffers);
        };
        write_header(eth, self.iface.mac, ETHERTYPE_IPV6);
        write_v6(
            ip_header,
            (src, dst),
            ip.protocol,
            hop_limit,
            payload_len as u16,
        );
        payload.meta_mut().layers = layers(IPV6_HEADER_LEN, payload_at);
        resolve_and_send(
            &mut self.v6,
            &self.iface,
            &mut self.counters,
            port,
            self.shared_host.as_deref(),
            &mut self.wake_ns,
            hop,
            Held {
                frame: payload,
                owner: ip.owner,
            },
        )
    }
}
