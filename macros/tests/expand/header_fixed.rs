// A fixed-size header of whole-byte fields: an Ethernet II header.

/// An Ethernet II header.
#[header]
pub struct Ethernet {
    /// Destination MAC address.
    pub dst: MacAddr,
    /// Source MAC address.
    pub src: MacAddr,
    /// The protocol of the payload.
    pub ethertype: u16,
}
