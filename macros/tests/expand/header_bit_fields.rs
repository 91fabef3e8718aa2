// Bit fields that cross byte boundaries, a flag and a little-endian field.

/// A made-up tunnel header.
#[header]
pub struct Tunnel {
    /// Always 2.
    pub version: u4,
    /// Traffic class: crosses from byte 0 into byte 1.
    pub class: u8,
    /// Flow label: crosses bytes 1..4.
    pub flow: u20,
    /// Set when the payload is a control message.
    pub control: bool,
    /// Reserved, zero.
    pub reserved: u7,
    /// Hop count.
    pub hops: u8,
    /// A sender-local cookie, little-endian on the wire.
    #[field(le)]
    pub cookie: u32,
    /// Opaque bytes.
    pub tag: [u8; 2],
}
