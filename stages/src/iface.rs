//! The addresses a pipeline answers for: its MAC address and its IPv4 and
//! IPv6 addresses with their prefixes.

use core::fmt;
use core::str::FromStr;
use std::net::{Ipv4Addr, Ipv6Addr};

use tpa::wire::icmpv6::solicited_node;
use tpa::wire::MacAddr;

/// The all-nodes link-local multicast group, ff02::1.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The text was not an address with an optional `/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseCidrError(String);

impl fmt::Display for ParseCidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an address with a prefix length, like 192.0.2.1/24 or 2001:db8::1/64",
            self.0
        )
    }
}

impl std::error::Error for ParseCidrError {}

macro_rules! cidr {
    ($(#[$doc:meta])* $name:ident, $addr:ty, $bits:expr, $int:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name {
            /// The address.
            pub addr: $addr,
            /// The prefix length in bits.
            pub prefix_len: u8,
        }

        impl $name {
            /// An address with its prefix length (clamped to the address size).
            pub fn new(addr: $addr, prefix_len: u8) -> Self {
                $name { addr, prefix_len: prefix_len.min($bits as u8) }
            }

            /// Whether `ip` lies in this prefix.
            #[inline]
            pub fn contains(&self, ip: $addr) -> bool {
                let mask: $int = if self.prefix_len == 0 {
                    0
                } else {
                    <$int>::MAX << ($bits - u32::from(self.prefix_len))
                };
                (<$int>::from(self.addr) & mask) == (<$int>::from(ip) & mask)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}/{}", self.addr, self.prefix_len)
            }
        }

        impl FromStr for $name {
            type Err = ParseCidrError;
            /// Parses `addr/len`, or a bare address as a host prefix.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let err = || ParseCidrError(s.to_owned());
                let (addr, len) = match s.split_once('/') {
                    Some((a, l)) => (a, l.parse::<u8>().map_err(|_| err())?),
                    None => (s, $bits as u8),
                };
                if u32::from(len) > $bits {
                    return Err(err());
                }
                Ok($name::new(addr.parse().map_err(|_| err())?, len))
            }
        }
    };
}

cidr! {
    /// An IPv4 address with a prefix length, `192.0.2.1/24`.
    ///
    /// ```
    /// use tpa_stages::iface::Ipv4Cidr;
    /// let net: Ipv4Cidr = "192.0.2.1/24".parse().unwrap();
    /// assert!(net.contains("192.0.2.200".parse().unwrap()));
    /// assert!(!net.contains("192.0.3.1".parse().unwrap()));
    /// ```
    Ipv4Cidr, Ipv4Addr, 32u32, u32
}

cidr! {
    /// An IPv6 address with a prefix length, `2001:db8::1/64`.
    Ipv6Cidr, Ipv6Addr, 128u32, u128
}

/// The identity of the interface a pipeline serves.
///
/// ```
/// use tpa::wire::MacAddr;
/// use tpa_stages::iface::Interface;
/// let iface = Interface::new(MacAddr([2, 0, 0, 0, 0, 1]))
///     .with_ipv4("192.0.2.1/24".parse().unwrap())
///     .with_ipv6("2001:db8::1/64".parse().unwrap());
/// assert!(iface.owns_ipv4("192.0.2.1".parse().unwrap()));
/// assert!(iface.accepts_ipv6("ff02::1:ff00:1".parse().unwrap())); // solicited-node group
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Our MAC address.
    pub mac: MacAddr,
    /// Our IPv4 addresses.
    pub ipv4: Vec<Ipv4Cidr>,
    /// Our IPv6 addresses.
    pub ipv6: Vec<Ipv6Cidr>,
}

impl Interface {
    /// An interface with a MAC address and no IP address yet.
    pub fn new(mac: MacAddr) -> Self {
        Interface {
            mac,
            ipv4: Vec::new(),
            ipv6: Vec::new(),
        }
    }

    /// Adds an IPv4 address.
    pub fn with_ipv4(mut self, cidr: Ipv4Cidr) -> Self {
        self.ipv4.push(cidr);
        self
    }

    /// Adds an IPv6 address.
    pub fn with_ipv6(mut self, cidr: Ipv6Cidr) -> Self {
        self.ipv6.push(cidr);
        self
    }

    /// Whether `ip` is one of our IPv4 addresses.
    #[inline]
    pub fn owns_ipv4(&self, ip: Ipv4Addr) -> bool {
        self.ipv4.iter().any(|c| c.addr == ip)
    }

    /// Whether `ip` is one of our IPv6 (unicast) addresses.
    #[inline]
    pub fn owns_ipv6(&self, ip: Ipv6Addr) -> bool {
        self.ipv6.iter().any(|c| c.addr == ip)
    }

    /// Whether a packet to `ip` is for us: one of our addresses, the
    /// solicited-node group of one of them, or all-nodes.
    #[inline]
    pub fn accepts_ipv6(&self, ip: Ipv6Addr) -> bool {
        ip == ALL_NODES
            || self
                .ipv6
                .iter()
                .any(|c| c.addr == ip || solicited_node(&c.addr) == ip)
    }

    /// Whether a frame to `mac` is for us at the link layer: our address,
    /// broadcast, or a multicast group.
    #[inline]
    pub fn accepts_mac(&self, mac: MacAddr) -> bool {
        mac == self.mac || mac.is_multicast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing_and_containment() {
        let c: Ipv4Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(c.addr, Ipv4Addr::new(10, 1, 2, 3));
        assert!(c.contains(Ipv4Addr::new(10, 255, 0, 1)));
        assert!(!c.contains(Ipv4Addr::new(11, 0, 0, 1)));
        let host: Ipv4Cidr = "10.0.0.1".parse().unwrap();
        assert_eq!(host.prefix_len, 32);
        assert!(!host.contains(Ipv4Addr::new(10, 0, 0, 2)));
        let any: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains(Ipv4Addr::new(203, 0, 113, 9)));
        assert!("10.0.0.1/33".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.0/8".parse::<Ipv4Cidr>().is_err());
        let v6: Ipv6Cidr = "2001:db8::1/64".parse().unwrap();
        assert!(v6.contains("2001:db8::ffff".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert_eq!(v6.to_string(), "2001:db8::1/64");
    }

    #[test]
    fn interface_accepts_its_groups_only() {
        let iface = Interface::new(MacAddr([2, 0, 0, 0, 0, 1]))
            .with_ipv6("2001:db8::1:2/64".parse().unwrap());
        assert!(iface.accepts_ipv6("ff02::1:ff01:2".parse().unwrap()));
        assert!(iface.accepts_ipv6(ALL_NODES));
        assert!(!iface.accepts_ipv6("ff02::1:ff01:3".parse().unwrap()));
        assert!(iface.accepts_mac(MacAddr::BROADCAST));
        assert!(!iface.accepts_mac(MacAddr([2, 0, 0, 0, 0, 2])));
    }
}
