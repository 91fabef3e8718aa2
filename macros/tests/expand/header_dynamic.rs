// A dynamic length over a field, an options walker and a header checksum.

/// An IPv4 header.
#[header(length = ihl * 4, options = Ipv4Options)]
pub struct Ipv4 {
    /// Always 4.
    pub version: u4,
    /// Header length in 32-bit words.
    pub ihl: u4,
    /// Differentiated services code point.
    pub dscp: u6,
    /// Explicit congestion notification.
    pub ecn: u2,
    /// Length of the datagram in bytes.
    pub total_len: u16,
    /// Identification.
    pub ident: u16,
    /// Flags.
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
