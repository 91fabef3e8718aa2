//! Routing: which neighbor a packet goes to. A destination on one of the
//! interface's prefixes (or IPv6 link-local) is its own next hop; any other
//! goes to the default gateway of its family; without one there is no
//! route. Broadcast and multicast destinations need no neighbor at all.
//!
//! The last route of each family (destination, source, next hop) is
//! remembered: a socket's send asks for the source and then egress for the
//! next hop of the same destination, and an echo or a flow sends to the
//! same one again and again. Routes change only through
//! [`Routes::set_gateway`] (and the interface not at all once the egress
//! path is built), which forgets them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tpa::wire::MacAddr;

use super::ethernet::{ipv4_multicast_mac, ipv6_multicast_mac};
use crate::iface::Interface;

/// The default gateways, one per family, and the last route of each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Routes {
    pub(super) gateway_v4: Option<Ipv4Addr>,
    pub(super) gateway_v6: Option<Ipv6Addr>,
    last_v4: Option<Route<Ipv4Addr>>,
    last_v6: Option<Route<Ipv6Addr>>,
}

/// The way to one destination: our address to send from (none when the
/// interface has none of the family) and the next hop (none: no route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Route<A> {
    pub(super) dst: A,
    pub(super) src: Option<A>,
    pub(super) hop: Option<NextHop<A>>,
}

/// Where a packet goes on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NextHop<A> {
    /// To a neighbor whose MAC address the cache resolves.
    Neighbor(A),
    /// To a group address (broadcast or multicast): no resolution.
    Group(MacAddr),
}

/// Whether `ip` is an IPv6 link-local unicast address (fe80::/10).
fn is_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

impl Routes {
    /// Makes `gateway` the default route of its family.
    pub(super) fn set_gateway(&mut self, gateway: IpAddr) {
        match gateway {
            IpAddr::V4(g) => self.gateway_v4 = Some(g),
            IpAddr::V6(g) => self.gateway_v6 = Some(g),
        }
        self.last_v4 = None;
        self.last_v6 = None;
    }

    /// The route of an IPv4 packet to `dst`, remembered until the next
    /// destination.
    #[inline]
    pub(super) fn route_v4(&mut self, iface: &Interface, dst: Ipv4Addr) -> Route<Ipv4Addr> {
        match self.last_v4 {
            Some(route) if route.dst == dst => route,
            _ => {
                let hop = self.next_hop_v4(iface, dst);
                let route = Route {
                    dst,
                    src: source_v4(iface, dst, hop),
                    hop,
                };
                self.last_v4 = Some(route);
                route
            }
        }
    }

    /// The route of an IPv6 packet to `dst`, remembered until the next
    /// destination.
    #[inline]
    pub(super) fn route_v6(&mut self, iface: &Interface, dst: Ipv6Addr) -> Route<Ipv6Addr> {
        match self.last_v6 {
            Some(route) if route.dst == dst => route,
            _ => {
                let route = Route {
                    dst,
                    src: source_v6(iface, dst),
                    hop: self.next_hop_v6(iface, dst),
                };
                self.last_v6 = Some(route);
                route
            }
        }
    }

    /// The next hop of an IPv4 packet to `dst`.
    #[inline]
    pub(super) fn next_hop_v4(
        &self,
        iface: &Interface,
        dst: Ipv4Addr,
    ) -> Option<NextHop<Ipv4Addr>> {
        if dst.is_multicast() {
            return Some(NextHop::Group(ipv4_multicast_mac(dst)));
        }
        if dst.is_broadcast() {
            return Some(NextHop::Group(MacAddr::BROADCAST));
        }
        for cidr in &iface.ipv4 {
            if cidr.contains(dst) {
                // The prefix's broadcast address (not for /31 and /32).
                if cidr.prefix_len < 31
                    && u32::from(dst) | (u32::MAX << (32 - cidr.prefix_len)) == u32::MAX
                {
                    return Some(NextHop::Group(MacAddr::BROADCAST));
                }
                return Some(NextHop::Neighbor(dst));
            }
        }
        self.gateway_v4.map(NextHop::Neighbor)
    }

    /// The next hop of an IPv6 packet to `dst`.
    #[inline]
    pub(super) fn next_hop_v6(
        &self,
        iface: &Interface,
        dst: Ipv6Addr,
    ) -> Option<NextHop<Ipv6Addr>> {
        if dst.is_multicast() {
            return Some(NextHop::Group(ipv6_multicast_mac(dst)));
        }
        if is_link_local(dst) || iface.ipv6.iter().any(|c| c.contains(dst)) {
            return Some(NextHop::Neighbor(dst));
        }
        self.gateway_v6.map(NextHop::Neighbor)
    }

    /// Our address to send to `dst` from (see
    /// [`Egress::source_for`](super::Egress::source_for)).
    pub(super) fn source_for(&self, iface: &Interface, dst: IpAddr) -> Option<IpAddr> {
        match dst {
            IpAddr::V4(dst) => source_v4(iface, dst, self.next_hop_v4(iface, dst)).map(IpAddr::V4),
            IpAddr::V6(dst) => source_v6(iface, dst).map(IpAddr::V6),
        }
    }
}

/// Our IPv4 address on the prefix of `hop` (the next hop to `dst`), else
/// the first one.
fn source_v4(iface: &Interface, dst: Ipv4Addr, hop: Option<NextHop<Ipv4Addr>>) -> Option<Ipv4Addr> {
    let hop = match hop {
        Some(NextHop::Neighbor(hop)) => hop,
        _ => dst,
    };
    iface
        .ipv4
        .iter()
        .find(|c| c.contains(hop))
        .or(iface.ipv4.first())
        .map(|c| c.addr)
}

/// Our IPv6 address of `dst`'s scope: link-local for link-local and
/// link-scope group destinations, else the one on `dst`'s prefix or the
/// first global one; the first one when none fits.
fn source_v6(iface: &Interface, dst: Ipv6Addr) -> Option<Ipv6Addr> {
    // Link-local scope: the unicast prefix and the ff02:: groups.
    let link_scope = is_link_local(dst) || dst.segments()[0] & 0xff0f == 0xff02;
    let ours = &iface.ipv6;
    let found = if link_scope {
        ours.iter().find(|c| is_link_local(c.addr))
    } else {
        ours.iter()
            .find(|c| c.contains(dst))
            .or_else(|| ours.iter().find(|c| !is_link_local(c.addr)))
    };
    found.or(ours.first()).map(|c| c.addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface() -> Interface {
        Interface::new(MacAddr([2, 0, 0, 0, 0, 1]))
            .with_ipv4("192.0.2.1/24".parse().unwrap())
            .with_ipv4("198.51.100.1/30".parse().unwrap())
            .with_ipv6("fe80::1/64".parse().unwrap())
            .with_ipv6("2001:db8::1/64".parse().unwrap())
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn on_link_goes_direct_off_link_to_the_gateway_or_nowhere() {
        let iface = iface();
        let mut routes = Routes::default();
        assert_eq!(
            routes.next_hop_v4(&iface, v4("192.0.2.9")),
            Some(NextHop::Neighbor(v4("192.0.2.9")))
        );
        assert_eq!(routes.next_hop_v4(&iface, v4("203.0.113.1")), None);
        assert_eq!(routes.next_hop_v6(&iface, v6("2001:db9::1")), None);
        routes.set_gateway("192.0.2.254".parse().unwrap());
        routes.set_gateway("fe80::fe".parse().unwrap());
        assert_eq!(
            routes.next_hop_v4(&iface, v4("203.0.113.1")),
            Some(NextHop::Neighbor(v4("192.0.2.254")))
        );
        assert_eq!(
            routes.next_hop_v6(&iface, v6("2001:db9::1")),
            Some(NextHop::Neighbor(v6("fe80::fe")))
        );
        assert_eq!(
            routes.next_hop_v6(&iface, v6("2001:db8::7")),
            Some(NextHop::Neighbor(v6("2001:db8::7")))
        );
        // Link-local is on-link whatever the prefixes.
        assert_eq!(
            routes.next_hop_v6(&iface, v6("fe80::99")),
            Some(NextHop::Neighbor(v6("fe80::99")))
        );
    }

    #[test]
    fn groups_need_no_neighbor() {
        let (iface, routes) = (iface(), Routes::default());
        fn group<A: std::fmt::Debug>(hop: Option<NextHop<A>>) -> MacAddr {
            match hop {
                Some(NextHop::Group(mac)) => mac,
                other => panic!("not a group: {other:?}"),
            }
        }
        assert_eq!(
            group(routes.next_hop_v4(&iface, v4("255.255.255.255"))),
            MacAddr::BROADCAST
        );
        assert_eq!(
            group(routes.next_hop_v4(&iface, v4("192.0.2.255"))),
            MacAddr::BROADCAST
        );
        assert_eq!(
            group(routes.next_hop_v4(&iface, v4("198.51.100.3"))),
            MacAddr::BROADCAST
        );
        assert_eq!(
            group(routes.next_hop_v4(&iface, v4("224.0.0.251"))),
            MacAddr([0x01, 0, 0x5e, 0, 0, 0xfb])
        );
        assert_eq!(
            group(routes.next_hop_v6(&iface, v6("ff02::1:ff00:2"))),
            MacAddr([0x33, 0x33, 0xff, 0, 0, 2])
        );
    }

    #[test]
    fn the_source_is_on_the_next_hops_prefix() {
        let iface = iface();
        let mut routes = Routes::default();
        let src = |routes: &Routes, dst: &str| routes.source_for(&iface, dst.parse().unwrap());
        assert_eq!(
            src(&routes, "198.51.100.2"),
            Some("198.51.100.1".parse().unwrap())
        );
        assert_eq!(
            src(&routes, "203.0.113.1"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(src(&routes, "fe80::5"), Some("fe80::1".parse().unwrap()));
        assert_eq!(
            src(&routes, "2001:db8::5"),
            Some("2001:db8::1".parse().unwrap())
        );
        routes.set_gateway("198.51.100.2".parse().unwrap());
        assert_eq!(
            src(&routes, "203.0.113.1"),
            Some("198.51.100.1".parse().unwrap())
        );
        routes.set_gateway("fe80::fe".parse().unwrap());
        // Global destinations through a link-local gateway: a global source.
        assert_eq!(
            src(&routes, "2001:db9::1"),
            Some("2001:db8::1".parse().unwrap())
        );
        let v4_only = Interface::new(MacAddr::ZERO).with_ipv4("10.0.0.1/8".parse().unwrap());
        assert_eq!(
            routes.source_for(&v4_only, "2001:db8::1".parse().unwrap()),
            None
        );
    }

    #[test]
    fn remembered_routes_are_what_routing_says_and_forgotten_when_the_gateway_changes() {
        let iface = iface();
        let mut routes = Routes::default();
        let off_link = v4("203.0.113.1");
        let r = routes.route_v4(&iface, off_link);
        assert_eq!((r.src, r.hop), (Some(v4("192.0.2.1")), None));
        routes.set_gateway("198.51.100.2".parse().unwrap());
        let r = routes.route_v4(&iface, off_link);
        assert_eq!(
            (r.src, r.hop),
            (
                Some(v4("198.51.100.1")),
                Some(NextHop::Neighbor(v4("198.51.100.2")))
            )
        );
        // Hit or miss, the same answers as routing afresh.
        let v4s = [
            "192.0.2.9",
            "192.0.2.9",
            "198.51.100.3",
            "203.0.113.1",
            "192.0.2.9",
        ];
        for dst in v4s.map(v4) {
            let r = routes.route_v4(&iface, dst);
            assert_eq!(r.hop, routes.next_hop_v4(&iface, dst), "{dst}");
            assert_eq!(r.src.map(IpAddr::V4), routes.source_for(&iface, dst.into()));
        }
        let v6s = [
            "fe80::5",
            "fe80::5",
            "2001:db8::5",
            "2001:db9::1",
            "ff02::1",
            "2001:db8::5",
        ];
        for dst in v6s.map(v6) {
            let r = routes.route_v6(&iface, dst);
            assert_eq!(r.hop, routes.next_hop_v6(&iface, dst), "{dst}");
            assert_eq!(r.src.map(IpAddr::V6), routes.source_for(&iface, dst.into()));
        }
        routes.set_gateway("fe80::fe".parse().unwrap());
        assert_eq!(
            routes.route_v6(&iface, v6("2001:db9::1")).hop,
            Some(NextHop::Neighbor(v6("fe80::fe")))
        );
    }
}
