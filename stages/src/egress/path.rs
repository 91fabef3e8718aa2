//! A TCP connection's way out, worked out once: the route and source
//! check, the Ethernet header but for its destination, and the IP
//! header's constant fields: over IPv4 with their part of the header
//! checksum ([`PathV4`]), over IPv6 all but the payload length
//! ([`PathV6`]). Each segment then takes the headers in one copy, patched
//! with its length (over IPv4 also a fresh ID and the checksum finished
//! from the partial sum); the neighbor is still looked up for every
//! frame, so a changed, stale or unanswered neighbor is met exactly as on
//! the full path.
//!
//! A path is built by one [`Egress`] and valid while that egress path's
//! routes and configuration stand: each egress path (and each change of
//! its gateway) takes a fresh stamp, and a path of another stamp is
//! built again before use.

use std::net::{Ipv4Addr, Ipv6Addr};

use tpa::header::checksum::pseudo_header_v4;
use tpa::wire::ipv4::IpProtocol;
use tpa::wire::MacAddr;

use super::ethernet::{write_header, ETHERNET_LEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use super::ip::{write_v4, write_v6, V4Header, IPV4_HEADER_LEN, IPV6_HEADER_LEN};
use super::route::NextHop;
use super::state::Egress;
use crate::neighbor::QuickTicket;

/// The Ethernet and IPv4 headers' length.
pub(super) const V4_HEADERS: usize = ETHERNET_LEN + IPV4_HEADER_LEN;

/// The IPv4 way out of one TCP connection (one source and destination),
/// kept by the connection and handed to
/// [`Egress::send_tcp_v4_on`](super::Egress::send_tcp_v4_on) with each of its
/// segments; [`PathV4::default`] is a path not built yet (the first
/// segment builds it).
#[derive(Debug, Clone, Copy)]
pub struct PathV4 {
    /// The egress path that built it (0: none).
    stamp: u64,
    /// The route's next hop.
    hop: NextHop<Ipv4Addr>,
    /// Ethernet (destination: the neighbor's of `neighbor`'s hit, else
    /// zero; written per frame but while `neighbor` vouches for it) and
    /// IPv4 (total length, ID and checksum zero).
    headers: [u8; V4_HEADERS],
    /// The one's-complement sum of the IPv4 header's constant 16-bit
    /// words, not folded.
    ip_sum: u32,
    /// The sum of TCP's pseudo-header but its length: source,
    /// destination and protocol ([`pseudo_header_v4`] of length zero).
    tcp_pseudo: u16,
    /// The neighbor cache's word for the next hop's address in
    /// `headers`, from its last quick hit (none while the hop is not a
    /// neighbor, or before the first hit).
    neighbor: QuickTicket,
}

impl Default for PathV4 {
    fn default() -> Self {
        PathV4 {
            stamp: 0,
            hop: NextHop::Group(MacAddr::BROADCAST),
            headers: [0; V4_HEADERS],
            ip_sum: 0,
            tcp_pseudo: 0,
            neighbor: QuickTicket::default(),
        }
    }
}

impl PathV4 {
    /// The stamp of the egress path that built it (0: not built).
    #[inline]
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    /// The headers of a packet of `total_len` bytes (IPv4 header
    /// included) with ID `ident`, the IPv4 checksum computed when
    /// `fill_checksum` (else zero, for the port): what
    /// [`write_v4`] and the Ethernet step write, destination zero.
    #[inline]
    pub(super) fn headers(
        &self,
        total_len: u16,
        ident: u16,
        fill_checksum: bool,
    ) -> [u8; V4_HEADERS] {
        let mut h = self.headers;
        h[16..18].copy_from_slice(&total_len.to_be_bytes());
        h[18..20].copy_from_slice(&ident.to_be_bytes());
        if fill_checksum {
            let sum = !fold(self.ip_sum + u32::from(total_len) + u32::from(ident));
            h[24..26].copy_from_slice(&sum.to_be_bytes());
        }
        h
    }

    /// Whether its headers carry `src` to `dst` (a path serves one
    /// connection, whose addresses never change).
    pub(super) fn carries(&self, (src, dst): (Ipv4Addr, Ipv4Addr)) -> bool {
        let ip = &self.headers[ETHERNET_LEN..];
        ip[12..16] == src.octets() && ip[16..20] == dst.octets()
    }

    /// The sum of its TCP segments' pseudo-header but their length
    /// (source, destination and protocol: [`pseudo_header_v4`] of length
    /// zero), worked out once with the path; add the length with
    /// [`combine`](tpa::header::checksum::combine).
    #[inline]
    pub fn tcp_pseudo(&self) -> u16 {
        self.tcp_pseudo
    }

    /// The next hop its packets go to.
    #[inline]
    pub(super) fn hop(&self) -> NextHop<Ipv4Addr> {
        self.hop
    }

    /// The neighbor cache's ticket for the destination address its
    /// headers carry (see [`keep_neighbor`](Self::keep_neighbor)).
    #[inline]
    pub(super) fn neighbor(&self) -> &QuickTicket {
        &self.neighbor
    }

    /// Keeps the next hop's address `mac`, with the neighbor cache's
    /// `ticket` for it, as its frames' destination: later frames take it
    /// with the headers while the ticket holds.
    #[inline]
    pub(super) fn keep_neighbor(&mut self, mac: MacAddr, ticket: QuickTicket) {
        self.headers[..6].copy_from_slice(&mac.octets());
        self.neighbor = ticket;
    }
}

/// The Ethernet and IPv6 headers' length.
pub(super) const V6_HEADERS: usize = ETHERNET_LEN + IPV6_HEADER_LEN;

/// The IPv6 way out of one TCP connection (one source and destination),
/// kept by the connection and handed to
/// [`Egress::send_tcp_v6_on`](super::Egress::send_tcp_v6_on) with each of
/// its segments; [`PathV6::default`] is a path not built yet (the first
/// segment builds it). As [`PathV4`], valid while the egress path that
/// built it stands (the same stamp).
#[derive(Debug, Clone, Copy)]
pub struct PathV6 {
    /// The egress path that built it (0: none).
    stamp: u64,
    /// The route's next hop.
    hop: NextHop<Ipv6Addr>,
    /// Ethernet (destination zero: the neighbor's, per frame) and IPv6
    /// (payload length zero).
    headers: [u8; V6_HEADERS],
}

impl Default for PathV6 {
    fn default() -> Self {
        PathV6 {
            stamp: 0,
            hop: NextHop::Group(MacAddr::BROADCAST),
            headers: [0; V6_HEADERS],
        }
    }
}

impl PathV6 {
    /// The stamp of the egress path that built it (0: not built).
    #[inline]
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    /// The headers of a packet of `payload_len` bytes behind the IPv6
    /// header: what [`write_v6`] and the Ethernet step write,
    /// destination zero.
    #[inline]
    pub(super) fn headers(&self, payload_len: u16) -> [u8; V6_HEADERS] {
        let mut h = self.headers;
        h[ETHERNET_LEN + 4..ETHERNET_LEN + 6].copy_from_slice(&payload_len.to_be_bytes());
        h
    }

    /// Whether its headers carry `src` to `dst` (a path serves one
    /// connection, whose addresses never change).
    pub(super) fn carries(&self, (src, dst): (Ipv6Addr, Ipv6Addr)) -> bool {
        let ip = &self.headers[ETHERNET_LEN..];
        ip[8..24] == src.octets() && ip[24..40] == dst.octets()
    }

    /// The next hop its packets go to.
    #[inline]
    pub(super) fn hop(&self) -> NextHop<Ipv6Addr> {
        self.hop
    }
}

/// `sum` folded to 16 bits with the end-around carries.
#[inline]
fn fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

impl<B> Egress<B> {
    /// Whether `path` was built by this egress path as it stands.
    #[inline]
    pub(super) fn path_current(&self, path: &PathV4) -> bool {
        path.stamp == self.stamp
    }

    /// Builds `path` for TCP from `src` to `dst`: the route, the source
    /// checked as [`send_ip`](super::send_ip) checks it, the headers' fixed
    /// fields. `false` (the path left as it was) when there is no route or
    /// `src` is not ours: the full path then refuses the packet and counts
    /// it.
    #[cold]
    #[inline(never)]
    pub(super) fn build_path_v4(
        &mut self,
        path: &mut PathV4,
        (src, dst): (Ipv4Addr, Ipv4Addr),
    ) -> bool {
        let route = self.routes.route_v4(&self.iface, dst);
        if route.src != Some(src) && !self.iface.owns_ipv4(src) {
            return false;
        }
        let Some(hop) = route.hop else {
            return false;
        };
        let mut headers = [0u8; V4_HEADERS];
        let (eth, ip) = headers.split_at_mut(ETHERNET_LEN);
        let (Ok(eth), Ok(ip)) = (
            <&mut [u8; ETHERNET_LEN]>::try_from(eth),
            <&mut [u8; IPV4_HEADER_LEN]>::try_from(ip),
        ) else {
            return false;
        };
        write_header(eth, self.iface.mac, ETHERTYPE_IPV4);
        let fixed = V4Header {
            src,
            dst,
            protocol: IpProtocol::Tcp,
            ttl: self.config.ttl,
            ident: 0,
            total_len: 0,
        };
        write_v4(ip, &fixed, false);
        let ip_sum = ip
            .chunks_exact(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        *path = PathV4 {
            stamp: self.stamp,
            hop,
            headers,
            ip_sum,
            tcp_pseudo: pseudo_header_v4(src, dst, IpProtocol::Tcp.raw(), 0),
            neighbor: QuickTicket::default(),
        };
        true
    }

    /// Whether `path` was built by this egress path as it stands.
    #[inline]
    pub(super) fn path6_current(&self, path: &PathV6) -> bool {
        path.stamp == self.stamp
    }

    /// Builds `path` for TCP from `src` to `dst`: the route, the source
    /// checked as [`send_ip`](super::send_ip) checks it, the headers'
    /// fixed fields (the configured hop limit). `false` (the path left as
    /// it was) when there is no route or `src` is not ours: the full path
    /// then refuses the packet and counts it.
    #[cold]
    #[inline(never)]
    pub(super) fn build_path_v6(
        &mut self,
        path: &mut PathV6,
        (src, dst): (Ipv6Addr, Ipv6Addr),
    ) -> bool {
        let route = self.routes.route_v6(&self.iface, dst);
        if route.src != Some(src) && !self.iface.owns_ipv6(src) {
            return false;
        }
        let Some(hop) = route.hop else {
            return false;
        };
        let mut headers = [0u8; V6_HEADERS];
        let (eth, ip) = headers.split_at_mut(ETHERNET_LEN);
        let (Ok(eth), Ok(ip)) = (
            <&mut [u8; ETHERNET_LEN]>::try_from(eth),
            <&mut [u8; IPV6_HEADER_LEN]>::try_from(ip),
        ) else {
            return false;
        };
        write_header(eth, self.iface.mac, ETHERTYPE_IPV6);
        write_v6(ip, (src, dst), IpProtocol::Tcp, self.config.hop_limit, 0);
        *path = PathV6 {
            stamp: self.stamp,
            hop,
            headers,
        };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpa::header::checksum;

    #[test]
    fn the_patched_headers_are_the_written_ones_at_every_length_and_id() {
        let egress: &mut Egress<tpa::buf::PoolBuf> = &mut Egress::new(
            crate::iface::Interface::new(MacAddr([2, 0, 0, 0, 0, 1]))
                .with_ipv4("192.0.2.1/24".parse().unwrap()),
        );
        let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 77));
        let mut path = PathV4::default();
        assert!(!egress.path_current(&path));
        assert!(egress.build_path_v4(&mut path, (src, dst)));
        assert!(egress.path_current(&path));
        assert_eq!(path.hop(), NextHop::Neighbor(dst));
        assert!(path.carries((src, dst)) && !path.carries((dst, src)));
        // Lengths and IDs at the edges, where the end-around carries fold.
        for total_len in [20u16, 40, 84, 1500, 0x7fff, 0xfffe, u16::MAX] {
            for ident in [0u16, 1, 0x1234, 0x8000, 0xfffe, u16::MAX] {
                let h = V4Header {
                    src,
                    dst,
                    protocol: IpProtocol::Tcp,
                    ttl: 64,
                    ident,
                    total_len,
                };
                for fill in [true, false] {
                    let mut want = [0u8; V4_HEADERS];
                    let (eth, ip) = want.split_at_mut(ETHERNET_LEN);
                    let mac = MacAddr([2, 0, 0, 0, 0, 1]);
                    write_header(eth.try_into().unwrap(), mac, ETHERTYPE_IPV4);
                    write_v4(ip.try_into().unwrap(), &h, fill);
                    let got = path.headers(total_len, ident, fill);
                    assert_eq!(got, want, "{total_len} {ident} {fill}");
                    if fill {
                        assert_eq!(checksum::sum(&got[ETHERNET_LEN..]), 0xffff);
                    }
                }
            }
        }
        // Not our source, or no route: not built.
        let mut other = PathV4::default();
        assert!(!egress.build_path_v4(&mut other, (Ipv4Addr::new(192, 0, 2, 9), dst)));
        let far = Ipv4Addr::new(203, 0, 113, 9);
        assert!(!egress.build_path_v4(&mut other, (src, far)));
        assert_eq!(other.stamp(), 0);
    }

    #[test]
    fn the_patched_ipv6_headers_are_the_written_ones_at_every_length() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let egress: &mut Egress<tpa::buf::PoolBuf> = &mut Egress::new(
            crate::iface::Interface::new(mac).with_ipv6("2001:db8::1/64".parse().unwrap()),
        );
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::77".parse().unwrap();
        let mut path = PathV6::default();
        assert!(!egress.path6_current(&path));
        assert!(egress.build_path_v6(&mut path, (src, dst)));
        assert!(egress.path6_current(&path));
        assert_eq!(path.hop(), NextHop::Neighbor(dst));
        assert!(path.carries((src, dst)) && !path.carries((dst, src)));
        for payload_len in [0u16, 20, 84, 1460, 0x7fff, u16::MAX] {
            let mut want = [0u8; V6_HEADERS];
            let (eth, ip) = want.split_at_mut(ETHERNET_LEN);
            write_header(eth.try_into().unwrap(), mac, ETHERTYPE_IPV6);
            let hop_limit = egress.config.hop_limit;
            write_v6(
                ip.try_into().unwrap(),
                (src, dst),
                IpProtocol::Tcp,
                hop_limit,
                payload_len,
            );
            assert_eq!(path.headers(payload_len), want, "{payload_len}");
        }
        // Not our source, or no route: not built.
        let mut other = PathV6::default();
        let not_ours: Ipv6Addr = "2001:db8::9".parse().unwrap();
        assert!(!egress.build_path_v6(&mut other, (not_ours, dst)));
        assert!(!egress.build_path_v6(&mut other, (src, "2001:db8:5::9".parse().unwrap())));
        assert_eq!(other.stamp(), 0);
    }
}
