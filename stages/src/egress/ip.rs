//! IP output: the IPv4 or IPv6 header in front of a transport payload.
//! IPv4: a fresh ID per packet, DF set (fragmentation is refused, not
//! done), the header checksum computed here or asked of the port when it
//! offloads it. IPv6: no extension headers.

use std::net::{Ipv4Addr, Ipv6Addr};

use tpa::header::checksum;
use tpa::wire::ipv4::IpProtocol;

/// Length of the IPv4 header the egress path writes (no options).
pub const IPV4_HEADER_LEN: usize = 20;
/// Length of the IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;

/// An IPv4 header's variable fields.
#[derive(Debug, Clone, Copy)]
pub(super) struct V4Header {
    pub(super) src: Ipv4Addr,
    pub(super) dst: Ipv4Addr,
    pub(super) protocol: IpProtocol,
    pub(super) ttl: u8,
    pub(super) ident: u16,
    /// Header and payload.
    pub(super) total_len: u16,
}

/// Writes `h` into `out`; the checksum field is computed when `checksum`
/// is true and left zero (for the port to fill) otherwise.
#[inline]
pub(super) fn write_v4(out: &mut [u8; IPV4_HEADER_LEN], h: &V4Header, fill_checksum: bool) {
    out[0] = 0x45; // version 4, IHL 5
    out[1] = 0; // DSCP, ECN
    out[2..4].copy_from_slice(&h.total_len.to_be_bytes());
    out[4..6].copy_from_slice(&h.ident.to_be_bytes());
    out[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF, offset 0
    out[8] = h.ttl;
    out[9] = h.protocol.raw();
    out[10..12].fill(0);
    out[12..16].copy_from_slice(&h.src.octets());
    out[16..20].copy_from_slice(&h.dst.octets());
    if fill_checksum {
        let sum = checksum::checksum(&out[..]);
        out[10..12].copy_from_slice(&sum.to_be_bytes());
    }
}

/// Writes an IPv6 header from `src` to `dst` carrying `payload_len` bytes
/// of `next_header` into `out`.
#[inline]
pub(super) fn write_v6(
    out: &mut [u8; IPV6_HEADER_LEN],
    (src, dst): (Ipv6Addr, Ipv6Addr),
    next_header: IpProtocol,
    hop_limit: u8,
    payload_len: u16,
) {
    out[..4].copy_from_slice(&[0x60, 0, 0, 0]); // version 6, class 0, flow 0
    out[4..6].copy_from_slice(&payload_len.to_be_bytes());
    out[6] = next_header.raw();
    out[7] = hop_limit;
    out[8..24].copy_from_slice(&src.octets());
    out[24..40].copy_from_slice(&dst.octets());
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpNumber, Ipv4Header, Ipv6Header};

    #[test]
    fn headers_read_back_as_etherparse_parses_them() {
        let h = V4Header {
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(198, 51, 100, 7),
            protocol: IpProtocol::Udp,
            ttl: 17,
            ident: 0xbeef,
            total_len: 20 + 13,
        };
        let mut out = [0xaa; IPV4_HEADER_LEN];
        write_v4(&mut out, &h, true);
        let (parsed, _) = Ipv4Header::from_slice(&out).unwrap();
        assert_eq!(parsed.source, [192, 0, 2, 1]);
        assert_eq!(parsed.destination, [198, 51, 100, 7]);
        assert_eq!(parsed.protocol, IpNumber::UDP);
        assert_eq!((parsed.time_to_live, parsed.identification), (17, 0xbeef));
        assert_eq!(parsed.total_len, 33);
        assert!(parsed.dont_fragment && !parsed.more_fragments);
        assert_eq!(parsed.header_checksum, parsed.calc_header_checksum());
        write_v4(&mut out, &h, false);
        assert_eq!(out[10..12], [0, 0], "left for the port");

        let (src, dst) = ("2001:db8::1".parse().unwrap(), "fe80::2".parse().unwrap());
        let mut out = [0xaa; IPV6_HEADER_LEN];
        write_v6(&mut out, (src, dst), IpProtocol::Tcp, 9, 1234);
        let (parsed, _) = Ipv6Header::from_slice(&out).unwrap();
        assert_eq!(parsed.source, src.octets());
        assert_eq!(parsed.destination, dst.octets());
        assert_eq!(parsed.next_header, IpNumber::TCP);
        assert_eq!((parsed.hop_limit, parsed.payload_length), (9, 1234));
        assert_eq!((parsed.traffic_class, parsed.flow_label.value()), (0, 0));
    }
}
