// A typed field (`#[field(u8)]`) and a checksum over the whole message.

/// An ICMPv4 echo header.
#[header]
pub struct Echo {
    /// The message type.
    #[field(u8)]
    pub kind: IcmpType,
    /// The message code.
    pub code: u8,
    /// Internet checksum of the whole message.
    #[checksum(all)]
    pub checksum: u16,
    /// Identifier.
    pub ident: u16,
    /// Sequence number.
    pub seq: u16,
}
