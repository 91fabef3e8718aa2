//! Checksums of a transport segment (TCP or UDP) over the IPv4 and IPv6
//! pseudo-headers, shared by [`tcp`](super::tcp) and [`udp`](super::udp).
//!
//! The protocols differ only in their protocol number, where the checksum
//! field sits and how a sum becomes the value to store (UDP sends a
//! computed 0 as 0xffff): those stay with each protocol.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::header::checksum::{
    pseudo_header_v4, pseudo_header_v6, sum_from, sum_segment_v4, Checksum,
};
use crate::wire::ipv4::IpProtocol;

/// The source and destination addresses a pseudo-header covers.
#[derive(Clone, Copy)]
pub(super) enum Endpoints<'a> {
    /// Over IPv4.
    V4(Ipv4Addr, Ipv4Addr),
    /// Over IPv6.
    V6(&'a Ipv6Addr, &'a Ipv6Addr),
}

impl Endpoints<'_> {
    /// The pseudo-header sum for a `len`-byte segment of `protocol`.
    #[inline]
    pub(super) fn pseudo_header(self, protocol: IpProtocol, len: usize) -> u16 {
        match self {
            Endpoints::V4(src, dst) => pseudo_header_v4(src, dst, protocol.raw(), len as u16),
            Endpoints::V6(src, dst) => pseudo_header_v6(src, dst, protocol.raw(), len as u32),
        }
    }

    /// Whether the checksum field inside `segment` (of `protocol`) is
    /// right: the pseudo-header and the whole segment, field included, sum
    /// to 0xffff (one pass over the bytes, none set apart for the field).
    /// A field of 0 and one of 0xffff are the same number to this sum: the
    /// caller decides what a zero field means.
    #[inline]
    pub(super) fn verifies(self, protocol: IpProtocol, segment: &[u8]) -> bool {
        let sum = match self {
            // The pseudo-header's words go straight into the sum.
            Endpoints::V4(src, dst) => sum_segment_v4(src, dst, protocol.raw(), segment),
            Endpoints::V6(..) => sum_from(self.pseudo_header(protocol, segment.len()), segment),
        };
        sum == 0xffff
    }

    /// The sum of the pseudo-header and of the whole `segment` of
    /// `protocol`, with its 2-byte checksum field at offset `field` counted
    /// as zero; the caller turns it into the value to store.
    #[inline]
    pub(super) fn segment_sum(
        self,
        protocol: IpProtocol,
        segment: &[u8],
        field: usize,
    ) -> Checksum {
        let mut c = Checksum::new();
        c.add_sum(self.pseudo_header(protocol, segment.len()));
        c.add_bytes(&segment[..field]);
        c.add_bytes(&segment[field + 2..]);
        c
    }
}
