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
use crate::header::{Bytes, HeaderError, SplitBytes};

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

/// An IPv4 header, 20 bytes plus up to 40 bytes of options (`ihl * 4`),
/// walked by [`Ipv4View::options_iter`].
#[header(length = ihl * 4, options = Ipv4Options)]
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
    /// Reserved flag bit (zero).
    pub reserved: u1,
    /// Don't fragment: drop rather than fragment on the way.
    pub dont_fragment: bool,
    /// More fragments follow this one.
    pub more_fragments: bool,
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
            reserved: 0,
            dont_fragment: true,
            more_fragments: false,
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

impl<B: SplitBytes> Ipv4View<B> {
    /// [`datagram_payload`](Self::datagram_payload) for as long as the
    /// buffer is borrowed (`&'a [u8]` or `&'a mut [u8]`), not the view: the
    /// payload cut at `total_len`, to hand to the next layer's view.
    ///
    /// ```
    /// use tpa::wire::ipv4::{Ipv4, Ipv4View};
    /// let mut frame = [0u8; 20 + 4 + 6]; // header, payload, link padding
    /// Ipv4 { total_len: 24, ..Ipv4::basic() }.emit(&mut frame).unwrap();
    /// frame[20..24].copy_from_slice(b"data");
    /// let payload = Ipv4View::new(&frame[..]).unwrap().into_datagram_payload().unwrap();
    /// assert_eq!(payload, b"data");
    /// ```
    ///
    /// # Errors
    ///
    /// As for `datagram_payload`.
    #[inline]
    pub fn into_datagram_payload(self) -> Result<B, HeaderError> {
        let len = self.datagram_payload()?.len();
        Ok(self.into_payload().split_bytes_at(len).0)
    }
}

/// IPv4 option kinds tpa names (IANA "IP Option Numbers").
pub mod option_kind {
    /// End of option list.
    pub const EOL: u8 = 0;
    /// No operation (padding).
    pub const NOP: u8 = 1;
    /// Record route.
    pub const RECORD_ROUTE: u8 = 7;
    /// Timestamp.
    pub const TIMESTAMP: u8 = 68;
    /// Loose source and record route.
    pub const LSRR: u8 = 131;
    /// Strict source and record route.
    pub const SSRR: u8 = 137;
    /// Router alert (RFC 2113).
    pub const ROUTER_ALERT: u8 = 148;
}

/// One IPv4 option: its kind and the bytes after kind and length (empty for
/// NOP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Option<'a> {
    /// The option kind (copied flag, class and number; see [`option_kind`]).
    pub kind: u8,
    /// The option data.
    pub data: &'a [u8],
}

impl Ipv4Option<'_> {
    /// Whether fragments must carry a copy of this option (the top bit of
    /// the kind).
    #[inline]
    pub fn copied(&self) -> bool {
        self.kind & 0x80 != 0
    }
}

/// Malformed IPv4 options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4OptionError {
    /// An option runs past the end of the option area.
    Truncated {
        /// Its kind.
        kind: u8,
    },
    /// A length byte below 2.
    BadLength {
        /// Its kind.
        kind: u8,
        /// The length found.
        len: u8,
    },
}

impl core::fmt::Display for Ipv4OptionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Ipv4OptionError::Truncated { kind } => {
                write!(
                    f,
                    "IPv4 option kind {kind} runs past the end of the options"
                )
            }
            Ipv4OptionError::BadLength { kind, len } => {
                write!(f, "IPv4 option kind {kind} has invalid length {len}")
            }
        }
    }
}

impl std::error::Error for Ipv4OptionError {}

/// An iterator over the options of an IPv4 header
/// ([`Ipv4View::options_iter`] over [`Ipv4View::options`]).
/// Stops at the end-of-list option, at the end of the bytes, or after the
/// first error; never panics and always terminates.
///
/// ```
/// use tpa::wire::ipv4::{option_kind, Ipv4Option, Ipv4Options};
/// // Router alert, then padding.
/// let opts = [148, 4, 0, 0, 1, 0, 0, 0];
/// let v: Vec<_> = Ipv4Options::new(&opts).collect();
/// assert_eq!(v, vec![
///     Ok(Ipv4Option { kind: option_kind::ROUTER_ALERT, data: &[0, 0] }),
///     Ok(Ipv4Option { kind: option_kind::NOP, data: &[] }),
/// ]);
/// ```
#[derive(Debug, Clone)]
pub struct Ipv4Options<'a> {
    rest: &'a [u8],
}

impl<'a> Ipv4Options<'a> {
    /// Iterates over `bytes`, an IPv4 option area.
    #[inline]
    pub fn new(bytes: &'a [u8]) -> Self {
        Ipv4Options { rest: bytes }
    }
}

impl<'a> Iterator for Ipv4Options<'a> {
    type Item = Result<Ipv4Option<'a>, Ipv4OptionError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, after) = self.rest.split_first()?;
        match kind {
            option_kind::EOL => {
                self.rest = &[];
                return None;
            }
            option_kind::NOP => {
                self.rest = after;
                return Some(Ok(Ipv4Option { kind, data: &[] }));
            }
            _ => {}
        }
        let err = match after.first() {
            None => Ipv4OptionError::Truncated { kind },
            Some(&len) if len < 2 => Ipv4OptionError::BadLength { kind, len },
            Some(&len) => match self.rest.split_at_checked(usize::from(len)) {
                Some((opt, rest)) => {
                    self.rest = rest;
                    return Some(Ok(Ipv4Option {
                        kind,
                        data: &opt[2..],
                    }));
                }
                None => Ipv4OptionError::Truncated { kind },
            },
        };
        self.rest = &[];
        Some(Err(err))
    }
}

impl core::iter::FusedIterator for Ipv4Options<'_> {}

impl<'a> header::HeaderOptions<'a> for Ipv4Options<'a> {
    #[inline]
    fn from_bytes(bytes: &'a [u8]) -> Self {
        Ipv4Options::new(bytes)
    }
}
