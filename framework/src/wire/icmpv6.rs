//! ICMPv6 (RFC 4443) and neighbor discovery (RFC 4861): echo, neighbor
//! solicitation and advertisement with their link-layer address options,
//! router solicitation.
//!
//! The ICMPv6 checksum covers the IPv6 pseudo-header, so views check and fill
//! it given the addresses ([`Icmpv6View::checksum_ok_v6`],
//! [`Icmpv6View::fill_checksum_v6`], and the same on every message view).
//!
//! ```
//! use std::net::Ipv6Addr;
//! use tpa::wire::icmpv6::{NdpOption, NdpOptions, NdpOptionWriter, NeighborSolicitation, NeighborSolicitationView, Icmpv6Type};
//! use tpa::wire::MacAddr;
//!
//! let me: Ipv6Addr = "fe80::1".parse().unwrap();
//! let target: Ipv6Addr = "fe80::2".parse().unwrap();
//! let group: Ipv6Addr = "ff02::1:ff00:2".parse().unwrap();
//! let mut msg = [0u8; 24 + 8];
//! let ns = NeighborSolicitation { msg_type: Icmpv6Type::NeighborSolicitation, code: 0, checksum: 0, reserved: 0, target };
//! ns.emit(&mut msg).unwrap();
//! let mut w = NdpOptionWriter::new(&mut msg[24..]);
//! w.source_link_addr(MacAddr([2, 0, 0, 0, 0, 1])).unwrap();
//! let mut view = NeighborSolicitationView::new(&mut msg[..]).unwrap();
//! view.fill_checksum_v6(&me, &group);
//! assert!(view.checksum_ok_v6(&me, &group));
//! let opts: Vec<_> = NdpOptions::new(view.payload()).collect();
//! assert_eq!(opts, vec![Ok(NdpOption::SourceLinkAddr(MacAddr([2, 0, 0, 0, 0, 1])))]);
//! ```

use core::fmt;
use std::net::Ipv6Addr;

use crate::header;
use crate::header::checksum::{pseudo_header_v6, Checksum};
use crate::header::{Bytes, BytesMut};
use crate::wire::ipv4::IpProtocol;
use crate::wire::MacAddr;

crate::field_enum! {
    /// ICMPv6 message types.
    pub enum Icmpv6Type: u8 {
        /// Destination unreachable.
        DestUnreachable = 1,
        /// Packet too big.
        PacketTooBig = 2,
        /// Time exceeded.
        TimeExceeded = 3,
        /// Parameter problem.
        ParameterProblem = 4,
        /// Echo request.
        EchoRequest = 128,
        /// Echo reply.
        EchoReply = 129,
        /// NDP router solicitation.
        RouterSolicitation = 133,
        /// NDP router advertisement.
        RouterAdvertisement = 134,
        /// NDP neighbor solicitation.
        NeighborSolicitation = 135,
        /// NDP neighbor advertisement.
        NeighborAdvertisement = 136,
        /// NDP redirect.
        Redirect = 137,
    }
}

/// Any ICMPv6 message: type, code, checksum, four type-specific bytes.
#[header]
pub struct Icmpv6 {
    /// Message type.
    #[field(u8)]
    pub msg_type: Icmpv6Type,
    /// Message code.
    pub code: u8,
    /// Checksum over the pseudo-header and the whole message.
    pub checksum: u16,
    /// The type-specific rest of the header.
    pub rest: [u8; 4],
}

/// An echo request or reply.
#[header]
pub struct Icmpv6Echo {
    /// [`Icmpv6Type::EchoRequest`] or [`Icmpv6Type::EchoReply`].
    #[field(u8)]
    pub msg_type: Icmpv6Type,
    /// 0.
    pub code: u8,
    /// Checksum over the pseudo-header and the whole message.
    pub checksum: u16,
    /// Identifier.
    pub ident: u16,
    /// Sequence number.
    pub seq: u16,
}

/// A router solicitation; NDP options follow.
#[header]
pub struct RouterSolicitation {
    /// [`Icmpv6Type::RouterSolicitation`].
    #[field(u8)]
    pub msg_type: Icmpv6Type,
    /// 0.
    pub code: u8,
    /// Checksum over the pseudo-header and the whole message.
    pub checksum: u16,
    /// Reserved (zero).
    pub reserved: u32,
}

/// A neighbor solicitation: who has `target`? NDP options follow (usually
/// the source link-layer address).
#[header]
pub struct NeighborSolicitation {
    /// [`Icmpv6Type::NeighborSolicitation`].
    #[field(u8)]
    pub msg_type: Icmpv6Type,
    /// 0.
    pub code: u8,
    /// Checksum over the pseudo-header and the whole message.
    pub checksum: u16,
    /// Reserved (zero).
    pub reserved: u32,
    /// The address being resolved.
    pub target: Ipv6Addr,
}

/// A neighbor advertisement: `target` is here. NDP options follow (usually
/// the target link-layer address).
#[header]
pub struct NeighborAdvertisement {
    /// [`Icmpv6Type::NeighborAdvertisement`].
    #[field(u8)]
    pub msg_type: Icmpv6Type,
    /// 0.
    pub code: u8,
    /// Checksum over the pseudo-header and the whole message.
    pub checksum: u16,
    /// The sender is a router.
    pub router: bool,
    /// Sent in response to a solicitation.
    pub solicited: bool,
    /// Override an existing cache entry.
    pub override_entry: bool,
    /// Reserved (zero).
    pub reserved: u29,
    /// The address advertised.
    pub target: Ipv6Addr,
}

/// The ICMPv6 checksum of `msg` (with its checksum field counted as zero)
/// between `src` and `dst`.
fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add_sum(pseudo_header_v6(
        src,
        dst,
        IpProtocol::Icmpv6.raw(),
        msg.len() as u32,
    ));
    c.add_bytes(&msg[..2]);
    c.add_bytes(&msg[4..]);
    c.checksum()
}

/// Checksum methods on every ICMPv6 message view; the message is the view's
/// whole buffer.
macro_rules! icmpv6_checksum_methods {
    ($($view:ident),*) => {$(
        impl<B: Bytes> $view<B> {
            /// Whether the checksum is right for a message from `src` to `dst`.
            #[inline]
            pub fn checksum_ok_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
                icmpv6_checksum(src, dst, self.as_bytes()) == self.checksum()
            }
        }

        impl<B: BytesMut> $view<B> {
            /// Computes and stores the checksum for a message from `src` to `dst`.
            #[inline]
            pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
                let c = icmpv6_checksum(src, dst, self.as_bytes());
                self.set_checksum(c);
            }
        }
    )*};
}

icmpv6_checksum_methods!(
    Icmpv6View,
    Icmpv6EchoView,
    RouterSolicitationView,
    NeighborSolicitationView,
    NeighborAdvertisementView
);

/// NDP option types (RFC 4861, 4.6).
pub mod ndp_option_type {
    /// Source link-layer address.
    pub const SOURCE_LINK_ADDR: u8 = 1;
    /// Target link-layer address.
    pub const TARGET_LINK_ADDR: u8 = 2;
}

/// One NDP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdpOption<'a> {
    /// The sender's link-layer (Ethernet) address.
    SourceLinkAddr(MacAddr),
    /// The target's link-layer (Ethernet) address.
    TargetLinkAddr(MacAddr),
    /// Any other option, or a link-layer address option that is not 8 bytes
    /// (not Ethernet).
    Unknown {
        /// Option type.
        kind: u8,
        /// The option data after type and length.
        data: &'a [u8],
    },
}

/// Malformed NDP options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdpOptionError {
    /// An option with length 0 (RFC 4861 says: discard the packet).
    ZeroLength {
        /// Its offset in the option area.
        offset: usize,
    },
    /// An option runs past the end of the message.
    Truncated {
        /// Its offset in the option area.
        offset: usize,
    },
    /// The writer ran out of room.
    NoSpace,
}

impl fmt::Display for NdpOptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NdpOptionError::ZeroLength { offset } => {
                write!(f, "NDP option at offset {offset} has length 0")
            }
            NdpOptionError::Truncated { offset } => {
                write!(f, "NDP option at offset {offset} runs past the end")
            }
            NdpOptionError::NoSpace => f.write_str("no room left for NDP options"),
        }
    }
}

impl std::error::Error for NdpOptionError {}

/// An iterator over NDP options (type, length in 8-byte units, data). Stops
/// at the end or after the first error; never panics, always terminates.
#[derive(Debug, Clone)]
pub struct NdpOptions<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> NdpOptions<'a> {
    /// Iterates over the option area of an NDP message (its payload).
    pub fn new(bytes: &'a [u8]) -> Self {
        NdpOptions { bytes, offset: 0 }
    }
}

impl<'a> Iterator for NdpOptions<'a> {
    type Item = Result<NdpOption<'a>, NdpOptionError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.bytes.get(self.offset..)?;
        if rest.is_empty() {
            return None;
        }
        let offset = self.offset;
        let fail = |this: &mut Self, e| {
            this.offset = this.bytes.len();
            Some(Err(e))
        };
        let Some(&units) = rest.get(1) else {
            return fail(self, NdpOptionError::Truncated { offset });
        };
        if units == 0 {
            return fail(self, NdpOptionError::ZeroLength { offset });
        }
        let len = usize::from(units) * 8;
        let Some(opt) = rest.get(..len) else {
            return fail(self, NdpOptionError::Truncated { offset });
        };
        self.offset += len;
        let kind = opt[0];
        let data = &opt[2..];
        let mac = || {
            let mut m = [0u8; 6];
            m.copy_from_slice(&data[..6]);
            MacAddr(m)
        };
        Some(Ok(match kind {
            ndp_option_type::SOURCE_LINK_ADDR if len == 8 => NdpOption::SourceLinkAddr(mac()),
            ndp_option_type::TARGET_LINK_ADDR if len == 8 => NdpOption::TargetLinkAddr(mac()),
            _ => NdpOption::Unknown { kind, data },
        }))
    }
}

impl core::iter::FusedIterator for NdpOptions<'_> {}

/// Writes NDP link-layer address options (8 bytes each).
#[derive(Debug)]
pub struct NdpOptionWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> NdpOptionWriter<'a> {
    /// Writes into `buf`, the option area of a message.
    pub fn new(buf: &'a mut [u8]) -> Self {
        NdpOptionWriter { buf, len: 0 }
    }

    fn link_addr(&mut self, kind: u8, mac: MacAddr) -> Result<(), NdpOptionError> {
        let slot = self
            .buf
            .get_mut(self.len..self.len + 8)
            .ok_or(NdpOptionError::NoSpace)?;
        slot[0] = kind;
        slot[1] = 1;
        slot[2..].copy_from_slice(&mac.0);
        self.len += 8;
        Ok(())
    }

    /// Writes a source link-layer address option.
    pub fn source_link_addr(&mut self, mac: MacAddr) -> Result<(), NdpOptionError> {
        self.link_addr(ndp_option_type::SOURCE_LINK_ADDR, mac)
    }

    /// Writes a target link-layer address option.
    pub fn target_link_addr(&mut self, mac: MacAddr) -> Result<(), NdpOptionError> {
        self.link_addr(ndp_option_type::TARGET_LINK_ADDR, mac)
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The solicited-node multicast address of `addr` (ff02::1:ffXX:XXXX, RFC
/// 4291, 2.7.1), where neighbor solicitations for it are sent.
///
/// ```
/// use std::net::Ipv6Addr;
/// let a: Ipv6Addr = "2001:db8::12:3456".parse().unwrap();
/// assert_eq!(tpa::wire::icmpv6::solicited_node(&a).to_string(), "ff02::1:ff12:3456");
/// ```
pub fn solicited_node(addr: &Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}
