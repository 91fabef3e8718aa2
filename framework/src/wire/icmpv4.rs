//! ICMP for IPv4 (RFC 792, RFC 1191): echo, destination unreachable
//! (including fragmentation needed with the next-hop MTU) and time exceeded.
//!
//! Every ICMPv4 message starts with the 8 bytes of [`Icmpv4`]; the typed
//! headers ([`Icmpv4Echo`], [`Icmpv4DestUnreachable`], [`Icmpv4TimeExceeded`])
//! name the last four bytes of it for each message type. The checksum covers
//! the whole message, so views check and fill it over their whole buffer.
//!
//! ```
//! use tpa::wire::icmpv4::{Icmpv4Echo, Icmpv4EchoView, Icmpv4Type};
//!
//! let mut msg = [0u8; 8 + 4];
//! msg[8..].copy_from_slice(b"ping");
//! let echo = Icmpv4Echo { msg_type: Icmpv4Type::EchoRequest, code: 0, checksum: 0, ident: 7, seq: 1 };
//! echo.emit(&mut msg).unwrap();
//! let mut view = Icmpv4EchoView::new(&mut msg[..]).unwrap();
//! assert!(view.checksum_ok());
//! // Turn the request into its reply in place.
//! view.set_msg_type(Icmpv4Type::EchoReply);
//! view.fill_checksum();
//! assert!(view.checksum_ok());
//! assert_eq!(view.payload(), b"ping");
//! ```

use crate::header;

crate::field_enum! {
    /// ICMPv4 message types.
    pub enum Icmpv4Type: u8 {
        /// Echo reply.
        EchoReply = 0,
        /// Destination unreachable.
        DestUnreachable = 3,
        /// Redirect.
        Redirect = 5,
        /// Echo request.
        EchoRequest = 8,
        /// Time exceeded.
        TimeExceeded = 11,
        /// Parameter problem.
        ParameterProblem = 12,
    }
}

crate::field_enum! {
    /// Codes of [`Icmpv4Type::DestUnreachable`].
    pub enum UnreachableCode: u8 {
        /// Network unreachable.
        Net = 0,
        /// Host unreachable.
        Host = 1,
        /// Protocol unreachable.
        Protocol = 2,
        /// Port unreachable.
        Port = 3,
        /// Fragmentation needed and DF set; `next_hop_mtu` holds the MTU
        /// (RFC 1191).
        FragmentationNeeded = 4,
        /// Source route failed.
        SourceRouteFailed = 5,
        /// Communication administratively prohibited (RFC 1812).
        AdminProhibited = 13,
    }
}

crate::field_enum! {
    /// Codes of [`Icmpv4Type::TimeExceeded`].
    pub enum TimeExceededCode: u8 {
        /// TTL exceeded in transit.
        TtlExceeded = 0,
        /// Fragment reassembly time exceeded.
        ReassemblyTimeExceeded = 1,
    }
}

/// Any ICMPv4 message: type, code, checksum and four type-specific bytes.
#[header]
pub struct Icmpv4 {
    /// Message type.
    #[field(u8)]
    pub msg_type: Icmpv4Type,
    /// Message code (meaning depends on the type).
    pub code: u8,
    /// Checksum over the whole message.
    #[checksum(all)]
    pub checksum: u16,
    /// The type-specific rest of the header.
    pub rest: [u8; 4],
}

/// An echo request or reply; the payload is echoed back.
#[header]
pub struct Icmpv4Echo {
    /// [`Icmpv4Type::EchoRequest`] or [`Icmpv4Type::EchoReply`].
    #[field(u8)]
    pub msg_type: Icmpv4Type,
    /// 0.
    pub code: u8,
    /// Checksum over the whole message.
    #[checksum(all)]
    pub checksum: u16,
    /// Identifier.
    pub ident: u16,
    /// Sequence number.
    pub seq: u16,
}

/// Destination unreachable; the payload holds the offending datagram's IP
/// header and at least 8 bytes of its payload.
#[header]
pub struct Icmpv4DestUnreachable {
    /// [`Icmpv4Type::DestUnreachable`].
    #[field(u8)]
    pub msg_type: Icmpv4Type,
    /// Why.
    #[field(u8)]
    pub code: UnreachableCode,
    /// Checksum over the whole message.
    #[checksum(all)]
    pub checksum: u16,
    /// Reserved (zero; RFC 792 calls it "unused").
    pub reserved: u16,
    /// With [`UnreachableCode::FragmentationNeeded`]: the MTU of the next
    /// hop (RFC 1191); zero otherwise.
    pub next_hop_mtu: u16,
}

/// Time exceeded; the payload holds the offending datagram's IP header and
/// at least 8 bytes of its payload.
#[header]
pub struct Icmpv4TimeExceeded {
    /// [`Icmpv4Type::TimeExceeded`].
    #[field(u8)]
    pub msg_type: Icmpv4Type,
    /// Why.
    #[field(u8)]
    pub code: TimeExceededCode,
    /// Checksum over the whole message.
    #[checksum(all)]
    pub checksum: u16,
    /// Reserved (zero; RFC 792 calls it "unused").
    pub reserved: u32,
}
