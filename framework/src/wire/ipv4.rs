//! IPv4 (RFC 791): the header with options, protocol numbers and fragment
//! helpers.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use tpa::wire::ipv4::{IpProtocol, Ipv4, Ipv4View};
//!
//! let ip = Ipv4 {
//!     total_len: 20 + 8,
//!     ttl: 64,
//!     protocol: IpProtocol::Udp,
//!     src: Ipv4Addr::new(10, 0, 0, 1),
//!     dst: Ipv4Addr::new(10, 0, 0, 2),
//!     ..Ipv4::basic()
//! };
//! let mut buf = [0u8; 28];
//! ip.emit(&mut buf).unwrap();
//! let view = Ipv4View::new(&buf[..]).unwrap();
//! assert!(view.checksum_ok());
//! assert_eq!(view.protocol(), IpProtocol::Udp);
//! assert!(!view.is_fragment());
//! ```

use std::net::Ipv4Addr;

use crate::header;
use crate::header::{Bytes, HeaderError};

crate::field_enum! {
    /// IP protocol numbers (IANA), as in IPv4's protocol field and IPv6's
    /// next header field (which includes the extension headers).
    pub enum IpProtocol: u8 {
        /// IPv6 hop-by-hop options.
        HopByHop = 0,
        /// Internet Control Message Protocol.
        Icmp = 1,
        /// Transmission Control Protocol.
        Tcp = 6,
        /// User Datagram Protocol.
        Udp = 17,
        /// IPv6 routing header.
        Ipv6Route = 43,
        /// IPv6 fragment header.
        Ipv6Frag = 44,
        /// Encapsulating security payload.
        Esp = 50,
        /// Authentication header.
        Ah = 51,
        /// ICMP for IPv6.
        Icmpv6 = 58,
        /// IPv6: nothing follows.
        NoNextHeader = 59,
        /// IPv6 destination options.
        Ipv6Opts = 60,
    }
}

/// The "don't fragment" bit of [`Ipv4::flags`].
pub const FLAG_DONT_FRAGMENT: u8 = 0b010;
/// The "more fragments" bit of [`Ipv4::flags`].
pub const FLAG_MORE_FRAGMENTS: u8 = 0b001;

/// An IPv4 header, 20 bytes plus up to 40 bytes of options (`ihl * 4`).
#[header(length = ihl * 4)]
pub struct Ipv4 {
    /// Always 4.
    pub version: u4,
    /// Header length in 32-bit words (5 without options, up to 15).
    pub ihl: u4,
    /// Differentiated services code point.
    pub dscp: u6,
    /// Explicit congestion notification.
    pub ecn: u2,
    /// Length of the datagram (header and payload) in bytes.
    pub total_len: u16,
    /// Identification, for reassembly.
    pub ident: u16,
    /// Reserved, don't fragment ([`FLAG_DONT_FRAGMENT`]), more fragments
    /// ([`FLAG_MORE_FRAGMENTS`]).
    pub flags: u3,
    /// Fragment offset in units of 8 bytes.
    pub frag_offset: u13,
    /// Time to live.
    pub ttl: u8,
    /// The protocol of the payload.
    #[field(u8)]
    pub protocol: IpProtocol,
    /// Header checksum.
    #[checksum]
    pub checksum: u16,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
}

impl Ipv4 {
    /// A header with version 4, IHL 5, DF set and everything else zero or
    /// unspecified: a starting point for `Ipv4 { .., ..Ipv4::basic() }`.
    pub fn basic() -> Self {
        Ipv4 {
            version: 4,
            ihl: 5,
            dscp: 0,
            ecn: 0,
            total_len: 20,
            ident: 0,
            flags: FLAG_DONT_FRAGMENT,
            frag_offset: 0,
            ttl: 64,
            protocol: IpProtocol::Unknown(255),
            checksum: 0,
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
        }
    }
}

impl<B: Bytes> Ipv4View<B> {
    /// Whether the "don't fragment" flag is set.
    #[inline]
    pub fn dont_fragment(&self) -> bool {
        self.flags() & FLAG_DONT_FRAGMENT != 0
    }

    /// Whether the "more fragments" flag is set.
    #[inline]
    pub fn more_fragments(&self) -> bool {
        self.flags() & FLAG_MORE_FRAGMENTS != 0
    }

    /// The fragment offset in bytes.
    #[inline]
    pub fn frag_offset_bytes(&self) -> usize {
        usize::from(self.frag_offset()) * 8
    }

    /// Whether this datagram is a fragment (more to come, or not the first).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.frag_offset() != 0
    }

    /// The payload as `total_len` delimits it: without the link layer's
    /// padding (a short datagram in a minimum-size Ethernet frame), and an
    /// error if `total_len` is shorter than the header or longer than the
    /// buffer.
    pub fn datagram_payload(&self) -> Result<&[u8], HeaderError> {
        let total = usize::from(self.total_len());
        let header_len = self.header_len();
        let payload = self.payload();
        if total < header_len {
            return Err(HeaderError::BadField {
                header: "Ipv4",
                field: "total_len",
            });
        }
        payload
            .get(..total - header_len)
            .ok_or(HeaderError::Truncated {
                header: "Ipv4",
                needed: total,
                available: header_len + payload.len(),
            })
    }
}
