//! IPv6 (RFC 8200): the fixed header, the extension headers and a bounded
//! walk through them to the upper-layer protocol.
//!
//! ```
//! use std::net::Ipv6Addr;
//! use tpa::wire::ipv4::IpProtocol;
//! use tpa::wire::ipv6::{Ipv6, Ipv6View};
//!
//! let ip = Ipv6 {
//!     version: 6,
//!     dscp: 0,
//!     ecn: 0,
//!     flow_label: 0x12345,
//!     payload_len: 8,
//!     next_header: IpProtocol::Udp,
//!     hop_limit: 64,
//!     src: Ipv6Addr::LOCALHOST,
//!     dst: Ipv6Addr::LOCALHOST,
//! };
//! let mut buf = [0u8; 48];
//! ip.emit(&mut buf).unwrap();
//! let view = Ipv6View::new(&buf[..]).unwrap();
//! assert_eq!(view.flow_label(), 0x12345);
//! let upper = view.upper_layer().unwrap();
//! assert_eq!(upper.protocol, IpProtocol::Udp);
//! assert_eq!(upper.offset, 0);
//! assert_eq!(upper.payload.len(), 8);
//! ```

use core::fmt;
use std::net::Ipv6Addr;

use crate::header;
use crate::header::Bytes;
use crate::wire::ipv4::IpProtocol;

/// The fixed IPv6 header (40 bytes).
#[header]
pub struct Ipv6 {
    /// Always 6.
    pub version: u4,
    /// Differentiated services code point (the upper six bits of the
    /// traffic class).
    pub dscp: u6,
    /// Explicit congestion notification (the lower two bits of the traffic
    /// class).
    pub ecn: u2,
    /// Flow label.
    pub flow_label: u20,
    /// Length of everything after this header, extension headers included.
    pub payload_len: u16,
    /// The first extension header or the upper-layer protocol.
    #[field(u8)]
    pub next_header: IpProtocol,
    /// Hop limit.
    pub hop_limit: u8,
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
}

/// A hop-by-hop, routing or destination options extension header:
/// next header and length, then `(hdr_ext_len + 1) * 8 - 2` bytes of
/// options or routing data.
#[header(length = (hdr_ext_len + 1) * 8)]
pub struct Ipv6ExtHeader {
    /// What follows this header.
    #[field(u8)]
    pub next_header: IpProtocol,
    /// Length of this header in 8-byte units, not counting the first 8
    /// bytes.
    pub hdr_ext_len: u8,
}

/// The IPv6 fragment header (8 bytes).
#[header]
pub struct Ipv6Fragment {
    /// What the fragmented part starts with.
    #[field(u8)]
    pub next_header: IpProtocol,
    /// Reserved (zero).
    pub reserved_1: u8,
    /// Offset of this fragment in 8-byte units.
    pub frag_offset: u13,
    /// Reserved (zero).
    pub reserved_2: u2,
    /// More fragments follow.
    pub more_fragments: bool,
    /// Identification, for reassembly.
    pub ident: u32,
}

/// The authentication header (RFC 4302) as far as walking past it needs:
/// its length counts 4-byte units, not counting the first two.
#[header(length = (hdr_ext_len + 2) * 4)]
pub struct AuthHeader {
    /// What follows this header.
    #[field(u8)]
    pub next_header: IpProtocol,
    /// Length of this header in 4-byte units, not counting the first two
    /// (RFC 4302 calls it "Payload Len", but it is the header's own length,
    /// like [`Ipv6ExtHeader::hdr_ext_len`]).
    pub hdr_ext_len: u8,
    /// Reserved (zero).
    pub reserved: u16,
    /// Security parameters index.
    pub spi: u32,
    /// Sequence number.
    pub seq: u32,
}

/// The most extension headers [`upper_layer`] walks before giving up
/// (RFC 8200 defines six kinds and recommends each at most once, the
/// destination options twice).
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// The fragment header found on the way to the upper layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Offset of the fragment in bytes.
    pub offset_bytes: usize,
    /// More fragments follow.
    pub more_fragments: bool,
    /// Identification.
    pub ident: u32,
}

/// Where the upper-layer protocol starts in an IPv6 payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer<'a> {
    /// The upper-layer protocol (TCP, UDP, ICMPv6, …; ESP when the rest is
    /// encrypted; `NoNextHeader` when nothing follows).
    pub protocol: IpProtocol,
    /// Offset of the upper-layer header from the start of the IPv6 payload
    /// (the total length of the extension headers).
    pub offset: usize,
    /// The bytes from the upper-layer header on.
    pub payload: &'a [u8],
    /// The fragment header, if there was one. A fragment with a non-zero
    /// offset does not start with the upper-layer header.
    pub fragment: Option<FragmentInfo>,
}

/// Malformed extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6ExtError {
    /// An extension header runs past the end of the payload.
    Truncated {
        /// The extension header's kind.
        header: IpProtocol,
        /// Its offset from the start of the payload.
        offset: usize,
    },
    /// A hop-by-hop header somewhere other than first.
    HopByHopNotFirst {
        /// Its offset from the start of the payload.
        offset: usize,
    },
    /// More than [`MAX_EXTENSION_HEADERS`] extension headers.
    TooMany,
    /// More than one fragment header.
    SecondFragmentHeader {
        /// Its offset from the start of the payload.
        offset: usize,
    },
}

impl fmt::Display for Ipv6ExtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Ipv6ExtError::Truncated { header, offset } => write!(
                f,
                "IPv6 extension header {} at offset {offset} is truncated",
                header.raw()
            ),
            Ipv6ExtError::HopByHopNotFirst { offset } => {
                write!(f, "IPv6 hop-by-hop header at offset {offset}, not first")
            }
            Ipv6ExtError::TooMany => write!(
                f,
                "more than {MAX_EXTENSION_HEADERS} IPv6 extension headers"
            ),
            Ipv6ExtError::SecondFragmentHeader { offset } => {
                write!(f, "second IPv6 fragment header at offset {offset}")
            }
        }
    }
}

impl std::error::Error for Ipv6ExtError {}

/// Walks the extension headers that start an IPv6 payload (`next_header` is
/// the fixed header's) to the upper-layer protocol.
///
/// Hop-by-hop, routing, destination options, fragment and authentication
/// headers are skipped; anything else is the upper layer. The walk is
/// bounded ([`MAX_EXTENSION_HEADERS`]) and never reads out of bounds.
pub fn upper_layer(
    next_header: IpProtocol,
    payload: &[u8],
) -> Result<UpperLayer<'_>, Ipv6ExtError> {
    let mut protocol = next_header;
    let mut offset = 0usize;
    let mut fragment = None;
    for seen in 0..=MAX_EXTENSION_HEADERS {
        let truncated = Ipv6ExtError::Truncated {
            header: protocol,
            offset,
        };
        let rest = payload.get(offset..).ok_or(truncated)?;
        let (next, len) = match protocol {
            IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                if protocol == IpProtocol::HopByHop && offset != 0 {
                    return Err(Ipv6ExtError::HopByHopNotFirst { offset });
                }
                let h = Ipv6ExtHeaderView::new(rest).map_err(|_| truncated)?;
                (h.next_header(), h.header_len())
            }
            IpProtocol::Ah => {
                let h = AuthHeaderView::new(rest).map_err(|_| truncated)?;
                (h.next_header(), h.header_len())
            }
            IpProtocol::Ipv6Frag => {
                if fragment.is_some() {
                    return Err(Ipv6ExtError::SecondFragmentHeader { offset });
                }
                let h = Ipv6FragmentView::new(rest).map_err(|_| truncated)?;
                fragment = Some(FragmentInfo {
                    offset_bytes: usize::from(h.frag_offset()) * 8,
                    more_fragments: h.more_fragments(),
                    ident: h.ident(),
                });
                (h.next_header(), Ipv6Fragment::LEN)
            }
            _ => {
                return Ok(UpperLayer {
                    protocol,
                    offset,
                    payload: rest,
                    fragment,
                })
            }
        };
        if seen == MAX_EXTENSION_HEADERS {
            break;
        }
        protocol = next;
        offset += len;
    }
    Err(Ipv6ExtError::TooMany)
}

impl<B: Bytes> Ipv6View<B> {
    /// The payload as `payload_len` delimits it (without link-layer padding),
    /// or `None` if the buffer is shorter than `payload_len` says.
    #[inline]
    pub fn datagram_payload(&self) -> Option<&[u8]> {
        self.payload().get(..usize::from(self.payload_len()))
    }

    /// Walks the extension headers to the upper-layer protocol, within the
    /// payload `payload_len` delimits (see [`upper_layer`]).
    pub fn upper_layer(&self) -> Result<UpperLayer<'_>, Ipv6ExtError> {
        let payload = self.datagram_payload().ok_or(Ipv6ExtError::Truncated {
            header: self.next_header(),
            offset: 0,
        })?;
        upper_layer(self.next_header(), payload)
    }
}
