//! UDP (RFC 768) with its IPv4 and IPv6 pseudo-header checksums.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use tpa::wire::udp::{Udp, UdpView};
//!
//! let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
//! let mut dgram = [0u8; 8 + 5];
//! dgram[8..].copy_from_slice(b"hello");
//! Udp { src_port: 1234, dst_port: 53, length: 13, checksum: 0 }.emit(&mut dgram).unwrap();
//! let mut view = UdpView::new(&mut dgram[..]).unwrap();
//! view.fill_checksum_v4(src, dst);
//! assert!(view.checksum_ok_v4(src, dst));
//! assert_eq!(view.datagram_payload(), Some(&b"hello"[..]));
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::header;
use crate::header::checksum::{pseudo_header_v4, pseudo_header_v6, Checksum};
use crate::header::{Bytes, BytesMut};
use crate::wire::ipv4::IpProtocol;

/// A UDP header (8 bytes).
#[header]
pub struct Udp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of header and payload in bytes.
    pub length: u16,
    /// Checksum over the pseudo-header, header and payload; 0 over IPv4
    /// means "none".
    pub checksum: u16,
}

/// Sum of a datagram with its checksum field skipped.
#[inline]
fn sum_without_checksum(c: &mut Checksum, dgram: &[u8]) {
    c.add_bytes(&dgram[..6]);
    c.add_bytes(&dgram[8..]);
}

/// The value to store: a computed 0 is sent as 0xffff (0 means "no
/// checksum", RFC 768).
#[inline]
fn finish(c: Checksum) -> u16 {
    match c.checksum() {
        0 => 0xffff,
        v => v,
    }
}

impl<B: Bytes> UdpView<B> {
    /// The payload as `length` delimits it (without link-layer padding), or
    /// `None` if `length` is below 8 or beyond the buffer.
    #[inline]
    pub fn datagram_payload(&self) -> Option<&[u8]> {
        let len = usize::from(self.length()).checked_sub(Udp::LEN)?;
        self.payload().get(..len)
    }

    /// The checksum this datagram (the whole buffer) should carry over IPv4.
    pub fn compute_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let bytes = self.as_bytes();
        let mut c = Checksum::new();
        c.add_sum(pseudo_header_v4(
            src,
            dst,
            IpProtocol::Udp.raw(),
            bytes.len() as u16,
        ));
        sum_without_checksum(&mut c, bytes);
        finish(c)
    }

    /// The checksum this datagram (the whole buffer) should carry over IPv6.
    pub fn compute_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> u16 {
        let bytes = self.as_bytes();
        let mut c = Checksum::new();
        c.add_sum(pseudo_header_v6(
            src,
            dst,
            IpProtocol::Udp.raw(),
            bytes.len() as u32,
        ));
        sum_without_checksum(&mut c, bytes);
        finish(c)
    }

    /// Whether the checksum is right over IPv4 (a zero checksum, "none",
    /// counts as right).
    #[inline]
    pub fn checksum_ok_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0 || self.checksum() == self.compute_checksum_v4(src, dst)
    }

    /// Whether the checksum is right over IPv6 (where it is mandatory).
    #[inline]
    pub fn checksum_ok_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        self.checksum() == self.compute_checksum_v6(src, dst)
    }
}

impl<B: BytesMut> UdpView<B> {
    /// Computes and stores the checksum for IPv4.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let c = self.compute_checksum_v4(src, dst);
        self.set_checksum(c);
    }

    /// Computes and stores the checksum for IPv6.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        let c = self.compute_checksum_v6(src, dst);
        self.set_checksum(c);
    }
}
