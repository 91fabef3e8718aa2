//! The Ethernet step: the header in front of an IP packet, and the MAC
//! addresses of IP group addresses.

use std::net::{Ipv4Addr, Ipv6Addr};

use tpa::wire::MacAddr;

/// Length of the Ethernet header the egress path writes (no VLAN tag).
pub const ETHERNET_LEN: usize = 14;

/// EtherType of IPv4.
pub(super) const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub(super) const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Writes an Ethernet header from `src` of `ether_type` into the first
/// [`ETHERNET_LEN`] bytes of `frame`, its destination zero until the
/// neighbor is known ([`set_destination`]).
#[inline]
pub(super) fn write_header(frame: &mut [u8; ETHERNET_LEN], src: MacAddr, ether_type: u16) {
    frame[..6].fill(0);
    frame[6..12].copy_from_slice(&src.octets());
    frame[12..14].copy_from_slice(&ether_type.to_be_bytes());
}

/// Writes `dst` as the destination of the Ethernet frame in `frame`;
/// `false` when the frame is shorter than an address.
#[inline]
pub(super) fn set_destination(frame: &mut [u8], dst: MacAddr) -> bool {
    crate::neighbor::set_ethernet_destination(frame, dst)
}

/// The Ethernet group of an IPv4 multicast address: 01:00:5e and its low
/// 23 bits (RFC 1112 §6.4).
pub fn ipv4_multicast_mac(group: Ipv4Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
}

/// The Ethernet group of an IPv6 multicast address: 33:33 and its last
/// four bytes (RFC 2464 §7).
pub fn ipv6_multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_macs_follow_the_rfcs() {
        assert_eq!(
            ipv4_multicast_mac("239.129.2.3".parse().unwrap()),
            MacAddr([0x01, 0, 0x5e, 0x01, 2, 3])
        );
        assert_eq!(
            ipv6_multicast_mac("ff02::1:ff12:3456".parse().unwrap()),
            MacAddr([0x33, 0x33, 0xff, 0x12, 0x34, 0x56])
        );
        let mut frame = [0xaa; ETHERNET_LEN];
        write_header(&mut frame, MacAddr([2, 0, 0, 0, 0, 1]), ETHERTYPE_IPV6);
        assert_eq!(frame, [0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x86, 0xdd]);
        assert!(set_destination(&mut frame, MacAddr::BROADCAST));
        assert_eq!(frame[..6], [0xff; 6]);
        assert!(!set_destination(&mut frame[..5], MacAddr::BROADCAST));
    }
}
