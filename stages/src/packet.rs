//! The typed packets that flow between the bundled stages.
//!
//! Each type is a buffer plus a promise about what is in it, made by the
//! stage that produced it: an [`ArpFrame`] is an Ethernet frame whose
//! EtherType is ARP, an [`Ipv4Packet`] an IPv4 datagram addressed to us
//! whose header was checked, and so on. The offsets of the parsed layers are
//! kept in the buffer's [`Meta`](tpa::buf::Meta) (`layers.l2`, `layers.l3`,
//! `layers.l4`), so later stages do not parse again. The types are what
//! `#[pipeline]` checks: a stage taking an `Ipv4Packet` cannot be placed
//! where raw frames arrive.
//!
//! Only this crate's stages wrap a buffer without checking it. Anyone else
//! gets a typed packet through a checked constructor that runs the producing
//! stage's own checks (the same code, not a copy): `parse` from an Ethernet
//! frame ([`ArpFrame::parse`], [`Ipv4Frame::parse`], [`Ipv6Frame::parse`],
//! and through both layers [`Ipv4Packet::parse`], [`Ipv6Packet::parse`]),
//! or [`Ipv4Packet::from_frame`] / [`Ipv6Packet::from_frame`] for the
//! network layer alone, and [`UdpPacket::from_ipv4`] /
//! [`UdpPacket::from_ipv6`] (and [`TcpPacket::from_ipv4`] /
//! [`TcpPacket::from_ipv6`]) for the split by protocol. What the stage would drop they refuse with a
//! [`Rejected`]: the [`PacketError`] (the layer, its length and what was
//! wrong, convertible to the stage's drop [`Reason`]) and the buffer back.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use tpa::buf::{PacketBuf, Pool};
//! use tpa::wire::ethernet::{EtherType, Ethernet};
//! use tpa::wire::ipv4::{IpProtocol, Ipv4};
//! use tpa::wire::MacAddr;
//! use tpa_stages::iface::Interface;
//! use tpa_stages::packet::{Ipv4Packet, Layer, PacketError, PacketErrorKind};
//!
//! let us = MacAddr([2, 0, 0, 0, 0, 1]);
//! let iface = Interface::new(us).with_ipv4("192.0.2.1/24".parse().unwrap());
//! let mut frame = [0u8; 14 + 20 + 8];
//! let eth = Ethernet { dst: us, src: MacAddr([2, 0, 0, 0, 0, 2]), ether_type: EtherType::Ipv4 };
//! eth.emit(&mut frame).unwrap();
//! let ip = Ipv4 {
//!     total_len: 28,
//!     protocol: IpProtocol::Udp,
//!     src: Ipv4Addr::new(192, 0, 2, 2),
//!     dst: Ipv4Addr::new(192, 0, 2, 1),
//!     ..Ipv4::basic()
//! };
//! ip.emit(&mut frame[14..]).unwrap();
//!
//! let pool = Pool::with_capacity(2).unwrap();
//! let mut buf = pool.alloc().unwrap();
//! buf.extend_from_slice(&frame).unwrap();
//! let packet = Ipv4Packet::parse(buf, &iface).unwrap();
//! assert_eq!(packet.l4_offset(), 34);
//!
//! // Cut short, it is refused, naming the layer and the lengths.
//! let mut buf = pool.alloc().unwrap();
//! buf.extend_from_slice(&frame[..14 + 24]).unwrap();
//! let rejected = Ipv4Packet::parse(buf, &iface).unwrap_err();
//! assert_eq!(
//!     *rejected.error(),
//!     PacketError { layer: Layer::Ipv4, len: 24, kind: PacketErrorKind::Truncated { needed: 28 } },
//! );
//! assert_eq!(rejected.to_string(), "IPv4 (24 bytes): truncated, needs 28 bytes");
//! let buf = rejected.into_buf(); // the frame back, to drop or hand on
//! assert_eq!(buf.len(), 38);
//! drop((packet, buf));
//! tpa::buf::BufferPool::assert_whole(&pool);
//! ```
//!
//! Accessors never panic: if a producer left an offset beyond the data, the
//! layer reads as empty and the consuming stage drops the packet as too
//! short.

use core::fmt;

use tpa::buf::PacketBuf;
use tpa::header::HeaderError;
use tpa::stage::Reason;

/// A layer whose checks a frame failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// The Ethernet header ([`EthernetClassify`](crate::ethernet::EthernetClassify)'s checks).
    Ethernet,
    /// The IPv4 header ([`Ipv4Input`](crate::ipv4::Ipv4Input)'s checks).
    Ipv4,
    /// The IPv6 header ([`Ipv6Input`](crate::ipv6::Ipv6Input)'s checks).
    Ipv6,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "Ethernet",
            Layer::Ipv4 => "IPv4",
            Layer::Ipv6 => "IPv6",
        })
    }
}

/// What was wrong with a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketErrorKind {
    /// The layer needs `needed` bytes (its fixed header, the header length
    /// it declares, or the datagram length it states) and the frame holds
    /// fewer. Dropped as `too-short`.
    Truncated {
        /// Bytes the layer needs from its start.
        needed: usize,
    },
    /// A field holds a value the protocol forbids or that contradicts
    /// another field (a wrong version, a length shorter than the header, a
    /// group address as the source). Dropped as `malformed`.
    Malformed {
        /// The field, as named in `tpa::wire`.
        field: &'static str,
    },
    /// The header checksum is wrong, by software's check or the port's.
    /// Dropped as `bad-checksum`.
    BadChecksum,
    /// Well-formed, but not what the stages handle (another EtherType, a
    /// fragment, an extension header). Dropped as `unsupported`.
    Unsupported {
        /// The field that says so.
        field: &'static str,
    },
    /// The layer's next header would start beyond the 64 KiB the buffer's
    /// layer offsets can record. Dropped as `unsupported`.
    OffsetTooLarge {
        /// The offset from the start of the frame.
        offset: usize,
    },
    /// A packet in several buffer segments (a frame a gathering port
    /// passed on as it was sent) whose headers up to this layer's do not
    /// all lie in the first segment, or one this layer reads from one
    /// segment only (every protocol but TCP). Dropped as `chained`.
    Chained {
        /// Bytes of the first segment the headers needed.
        needed: usize,
    },
    /// Addressed to someone else. Dropped as `not-for-us`.
    NotForUs {
        /// The destination address field.
        field: &'static str,
    },
}

/// Why a frame is not the typed packet asked for: the layer, how many bytes
/// of the frame that layer had, and what was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacketError {
    /// The layer whose check failed.
    pub layer: Layer,
    /// Bytes of the frame from the start of that layer's header on.
    pub len: usize,
    /// What was wrong.
    pub kind: PacketErrorKind,
}

impl PacketError {
    /// The error at `layer`, whose header starts `len` bytes before the end
    /// of the frame.
    #[inline]
    pub(crate) const fn new(layer: Layer, len: usize, kind: PacketErrorKind) -> Self {
        PacketError { layer, len, kind }
    }

    /// A header view of `layer` (whose bytes are `len` long) that failed to
    /// build, naming `length_field` when the declared length is below the
    /// fixed part.
    #[inline]
    pub(crate) fn from_header(
        layer: Layer,
        len: usize,
        length_field: &'static str,
        e: HeaderError,
    ) -> Self {
        let kind = match e {
            HeaderError::Truncated { needed, .. } => PacketErrorKind::Truncated { needed },
            HeaderError::BadField { field, .. } => PacketErrorKind::Malformed { field },
            // A declared length below the fixed part.
            _ => PacketErrorKind::Malformed {
                field: length_field,
            },
        };
        PacketError::new(layer, len, kind)
    }

    /// The reason the producing stage drops such a frame with.
    #[inline]
    pub fn reason(&self) -> Reason {
        match self.kind {
            PacketErrorKind::Truncated { .. } => Reason::TOO_SHORT,
            PacketErrorKind::Malformed { .. } => Reason::MALFORMED,
            PacketErrorKind::BadChecksum => Reason::BAD_CHECKSUM,
            PacketErrorKind::Unsupported { .. } | PacketErrorKind::OffsetTooLarge { .. } => {
                Reason::UNSUPPORTED
            }
            PacketErrorKind::NotForUs { .. } => Reason::NOT_FOR_US,
            PacketErrorKind::Chained { .. } => Reason::CHAINED,
        }
    }
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} bytes): ", self.layer, self.len)?;
        match self.kind {
            PacketErrorKind::Truncated { needed } => write!(f, "truncated, needs {needed} bytes"),
            PacketErrorKind::Malformed { field } => write!(f, "malformed `{field}`"),
            PacketErrorKind::BadChecksum => f.write_str("bad header checksum"),
            PacketErrorKind::Unsupported { field } => write!(f, "unsupported `{field}`"),
            PacketErrorKind::OffsetTooLarge { offset } => {
                write!(f, "next layer at offset {offset}, beyond 65535")
            }
            PacketErrorKind::NotForUs { field } => write!(f, "`{field}` is not ours"),
            PacketErrorKind::Chained { needed } => {
                write!(f, "chained, needs {needed} bytes in its first segment")
            }
        }
    }
}

impl std::error::Error for PacketError {}

/// A buffer a checked constructor refused: the error, and the buffer back.
pub struct Rejected<B> {
    error: PacketError,
    buf: B,
}

impl<B> Rejected<B> {
    /// Refuses `buf` for `error`.
    #[inline]
    pub(crate) fn new(error: PacketError, buf: B) -> Self {
        Rejected { error, buf }
    }

    /// Why the buffer was refused.
    #[inline]
    pub fn error(&self) -> &PacketError {
        &self.error
    }

    /// The refused buffer, to drop or hand on (to the host, say).
    #[inline]
    pub fn into_buf(self) -> B {
        self.buf
    }
}

impl<B> From<Rejected<B>> for PacketError {
    #[inline]
    fn from(r: Rejected<B>) -> PacketError {
        r.error
    }
}

impl<B: PacketBuf> fmt::Debug for Rejected<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("error", &self.error)
            .field("buf_len", &self.buf.len())
            .finish()
    }
}

impl<B> fmt::Display for Rejected<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<B: PacketBuf> std::error::Error for Rejected<B> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

macro_rules! typed_packet {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<B>(B);

        impl<B: PacketBuf> $name<B> {
            /// Wraps `buf` without checking it.
            ///
            /// The caller promises what the type's documentation says: that
            /// the producing stage's checks passed on `buf` and that the
            /// layer offsets in its metadata were set by them. Breaking the
            /// promise is not memory-unsafe (accessors never panic), but the
            /// stages that take the type trust it. Outside this crate, the
            /// checked `parse` and `from_frame` are the way in.
            #[inline]
            pub(crate) fn new_unchecked(buf: B) -> Self {
                $name(buf)
            }

            /// The buffer.
            #[inline]
            pub fn buf(&self) -> &B {
                &self.0
            }

            /// The buffer, writable.
            #[inline]
            pub fn buf_mut(&mut self) -> &mut B {
                &mut self.0
            }

            /// Gives the buffer back (to transmit it, say).
            #[inline]
            pub fn into_buf(self) -> B {
                self.0
            }

            /// Offset of the network-layer header from the start of the frame.
            #[inline]
            pub fn l3_offset(&self) -> usize {
                usize::from(self.0.meta().layers.l3)
            }

            /// The network layer: the frame from its network-layer header on.
            #[inline]
            pub fn l3(&self) -> &[u8] {
                self.0.data().get(self.l3_offset()..).unwrap_or(&[])
            }

            /// The network layer, writable.
            #[inline]
            pub fn l3_mut(&mut self) -> &mut [u8] {
                let offset = self.l3_offset();
                self.0.data_mut().get_mut(offset..).unwrap_or(&mut [])
            }
        }
    };
}

macro_rules! transport_layer {
    ($name:ident) => {
        impl<B: PacketBuf> $name<B> {
            /// Offset of the transport-layer header from the start of the frame.
            #[inline]
            pub fn l4_offset(&self) -> usize {
                usize::from(self.0.meta().layers.l4)
            }

            /// The transport layer (ICMP message, TCP segment…): the frame from
            /// its transport header to the end of the datagram.
            #[inline]
            pub fn l4(&self) -> &[u8] {
                self.0.data().get(self.l4_offset()..).unwrap_or(&[])
            }

            /// The frame split at the transport layer: everything before it
            /// (Ethernet and IP headers) and the transport layer, both writable.
            #[inline]
            pub fn split_l4_mut(&mut self) -> (&mut [u8], &mut [u8]) {
                let offset = self.l4_offset();
                let data = self.0.data_mut();
                if offset <= data.len() {
                    data.split_at_mut(offset)
                } else {
                    (data, &mut [])
                }
            }
        }
    };
}

typed_packet! {
    /// An Ethernet frame whose EtherType is ARP; the ARP packet starts at
    /// `l3_offset()`.
    ArpFrame
}

typed_packet! {
    /// An Ethernet frame whose EtherType is IPv4, for us at the link layer;
    /// the IP header (not yet checked) starts at `l3_offset()`.
    Ipv4Frame
}

typed_packet! {
    /// An Ethernet frame whose EtherType is IPv6, for us at the link layer;
    /// the IP header (not yet checked) starts at `l3_offset()`.
    Ipv6Frame
}

typed_packet! {
    /// An IPv4 datagram addressed to one of our addresses: header checked
    /// (version, length, checksum), not a fragment, link-layer padding
    /// trimmed; the transport layer starts at `l4_offset()`.
    Ipv4Packet
}

typed_packet! {
    /// An IPv6 packet addressed to us (one of our addresses or a multicast
    /// group we are in): header checked, no extension headers, link-layer
    /// padding trimmed; the transport layer starts at `l4_offset()`.
    Ipv6Packet
}

typed_packet! {
    /// An [`Ipv4Packet`] or [`Ipv6Packet`] whose transport protocol is UDP
    /// (the network layer checked by IP input, the UDP header not yet):
    /// the IP header starts at `l3_offset()`, the UDP header at
    /// `l4_offset()`. [`is_ipv6`](UdpPacket::is_ipv6) tells the family.
    UdpPacket
}

typed_packet! {
    /// An [`Ipv4Packet`] or [`Ipv6Packet`] whose transport protocol is TCP
    /// (the network layer checked by IP input, the TCP header not yet):
    /// the IP header starts at `l3_offset()`, the TCP header at
    /// `l4_offset()`. [`is_ipv6`](TcpPacket::is_ipv6) tells the family.
    TcpPacket
}

transport_layer!(Ipv4Packet);
transport_layer!(Ipv6Packet);
transport_layer!(UdpPacket);
transport_layer!(TcpPacket);

macro_rules! family {
    ($name:ident) => {
        impl<B: PacketBuf> $name<B> {
            /// Whether the network layer is IPv6 (IPv4 otherwise), from the
            /// version IP input checked.
            #[inline]
            pub fn is_ipv6(&self) -> bool {
                self.l3().first().is_some_and(|b| b >> 4 == 6)
            }
        }
    };
}

family!(UdpPacket);
family!(TcpPacket);
