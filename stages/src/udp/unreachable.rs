//! ICMP port unreachable (RFC 792 / RFC 4443): what a closed port answers,
//! quoting the datagram that reached it.

use std::net::{IpAddr, Ipv6Addr};

use tpa::buf::PacketBuf;
use tpa::header::checksum::checksum;
use tpa::wire::icmpv4::{Icmpv4DestUnreachable, Icmpv4Type, UnreachableCode};
use tpa::wire::icmpv6::{Icmpv6, Icmpv6Type, Icmpv6View};
use tpa::wire::ipv4::IpProtocol;

/// Length of the ICMP header before the quote (type, code, checksum, four
/// unused bytes), the same in both versions.
pub const ICMP_ERROR_HEADER_LEN: usize = 8;

/// The longest IPv4 datagram an ICMP error makes, quote included
/// (RFC 1812 4.3.2.3).
pub const ICMPV4_ERROR_MAX: usize = 576;

/// The longest IPv6 packet an ICMPv6 error makes: the minimum MTU
/// (RFC 4443 2.4 (c)).
pub const ICMPV6_ERROR_MAX: usize = 1280;

/// ICMPv6 destination unreachable code 4: port unreachable.
pub const ICMPV6_PORT_UNREACHABLE: u8 = 4;

/// Whether a datagram from `src` to `dst` may be answered with an ICMP
/// error at all: never to or from a group, the unspecified or a loopback
/// address (RFC 1122 3.2.2, RFC 4443 2.4 (e)).
#[inline]
pub fn may_answer(src: IpAddr, dst: IpAddr) -> bool {
    let unicast = |ip: IpAddr| match ip {
        IpAddr::V4(a) => {
            !(a.is_broadcast() || a.is_multicast() || a.is_unspecified() || a.is_loopback())
        }
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified() || a.is_loopback()),
    };
    unicast(src) && unicast(dst)
}

/// Writes a port unreachable message into `out` (empty, with its tailroom
/// to fill): the ICMP header, then as much of `offending` (the IP packet
/// from its IP header on) as fits under the family's limit and `out`'s
/// tailroom, checksummed for `ours` → `peer` (the pseudo-header counts for
/// ICMPv6). Returns the message's length, `None` when `out` cannot take
/// the header and a quote of the IP header.
pub fn write_port_unreachable<B: PacketBuf>(
    out: &mut B,
    offending: &[u8],
    ours: IpAddr,
    peer: IpAddr,
) -> Option<usize> {
    let (ip_header, max) = match ours {
        IpAddr::V4(_) => (20, ICMPV4_ERROR_MAX),
        IpAddr::V6(_) => (40, ICMPV6_ERROR_MAX),
    };
    let room = out.tailroom().min(max - ip_header);
    let quote = offending
        .len()
        .min(room.checked_sub(ICMP_ERROR_HEADER_LEN)?);
    if quote < ip_header.min(offending.len()) {
        return None;
    }
    let msg = out.append(ICMP_ERROR_HEADER_LEN + quote).ok()?;
    msg[ICMP_ERROR_HEADER_LEN..].copy_from_slice(&offending[..quote]);
    match (ours, peer) {
        (IpAddr::V4(_), IpAddr::V4(_)) => fill_v4(msg),
        (IpAddr::V6(ours), IpAddr::V6(peer)) => fill_v6(msg, &ours, &peer),
        _ => return None,
    }
    Some(msg.len())
}

/// The ICMPv4 header of a port unreachable over `msg` (quote in place).
fn fill_v4(msg: &mut [u8]) {
    let header = Icmpv4DestUnreachable {
        msg_type: Icmpv4Type::DestUnreachable,
        code: UnreachableCode::Port,
        checksum: 0,
        reserved: 0,
        next_hop_mtu: 0,
    };
    // The header is 8 bytes and `msg` holds at least those.
    let _ = header.emit(&mut *msg);
    // The emitted header may carry a sum of its own bytes; the message's
    // covers the quote too.
    msg[2..4].fill(0);
    let sum = checksum(msg);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
}

/// The ICMPv6 header of a port unreachable over `msg` (quote in place).
fn fill_v6(msg: &mut [u8], ours: &Ipv6Addr, peer: &Ipv6Addr) {
    let header = Icmpv6 {
        msg_type: Icmpv6Type::DestUnreachable,
        code: ICMPV6_PORT_UNREACHABLE,
        checksum: 0,
        rest: [0; 4],
    };
    let _ = header.emit(&mut *msg);
    if let Ok(mut view) = Icmpv6View::new(msg) {
        view.fill_checksum_v6(ours, peer);
    }
}

/// The IP protocol of an ICMP error for `ours`'s family.
#[inline]
pub fn icmp_protocol(ours: IpAddr) -> IpProtocol {
    match ours {
        IpAddr::V4(_) => IpProtocol::Icmp,
        IpAddr::V6(_) => IpProtocol::Icmpv6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pool, BufferPool};
    use etherparse::{Icmpv4Type as EpV4, Icmpv6Type as EpV6};
    use tpa::wire::icmpv4::Icmpv4View;

    #[test]
    fn a_v4_message_quotes_at_most_548_bytes_and_verifies() {
        let ours: IpAddr = "192.0.2.1".parse().unwrap();
        let peer: IpAddr = "192.0.2.2".parse().unwrap();
        for len in [28usize, 100, 548, 1000] {
            let offending: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = pool().alloc().unwrap();
            let n = write_port_unreachable(&mut out, &offending, ours, peer).unwrap();
            assert_eq!(n, 8 + len.min(548), "len {len}");
            let icmp = Icmpv4View::new(out.data()).unwrap();
            assert!(icmp.checksum_ok());
            let parsed = etherparse::Icmpv4Slice::from_slice(out.data()).unwrap();
            assert!(matches!(
                parsed.icmp_type(),
                EpV4::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port)
            ));
            assert_eq!(&out.data()[8..], &offending[..len.min(548)]);
        }
        pool().assert_whole();
    }

    #[test]
    fn a_v6_message_quotes_at_most_1232_bytes_and_verifies() {
        let ours: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let peer: Ipv6Addr = "2001:db8::2".parse().unwrap();
        for len in [48usize, 1232, 1400] {
            let offending: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut out = pool().alloc().unwrap();
            let n = write_port_unreachable(&mut out, &offending, ours.into(), peer.into()).unwrap();
            assert_eq!(n, 8 + len.min(1232));
            let view = Icmpv6View::new(out.data()).unwrap();
            assert!(view.checksum_ok_v6(&ours, &peer));
            let parsed = etherparse::Icmpv6Slice::from_slice(out.data()).unwrap();
            assert!(matches!(
                parsed.icmp_type(),
                EpV6::DestinationUnreachable(etherparse::icmpv6::DestUnreachableCode::Port)
            ));
        }
        pool().assert_whole();
    }

    #[test]
    fn groups_and_unspecified_are_never_answered() {
        let ok = |s: &str, d: &str| may_answer(s.parse().unwrap(), d.parse().unwrap());
        assert!(ok("192.0.2.2", "192.0.2.1"));
        assert!(!ok("192.0.2.2", "255.255.255.255"));
        assert!(!ok("0.0.0.0", "192.0.2.1"));
        assert!(!ok("2001:db8::2", "ff02::1"));
        assert!(ok("2001:db8::2", "2001:db8::1"));
        assert!(!ok("::", "2001:db8::1"));
    }
}
