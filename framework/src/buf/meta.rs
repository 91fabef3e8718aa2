//! Per-packet metadata carried beside the data.

/// What the receiving device said about a checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumStatus {
    /// The device did not check it; software must.
    #[default]
    Unknown,
    /// The device verified it.
    Good,
    /// The device found it wrong.
    Bad,
}

/// Offsets of the parsed layers from the start of the data, filled in by
/// parsing stages so later stages need not parse again. `u16::MAX` is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerOffsets {
    /// Where the link-layer (Ethernet) header starts.
    pub l2: u16,
    /// Where the network-layer (IPv4/IPv6) header starts.
    pub l3: u16,
    /// Where the transport-layer (TCP/UDP/ICMP) header starts.
    pub l4: u16,
    /// Where the transport payload starts.
    pub payload: u16,
}

impl LayerOffsets {
    /// The value of an offset that has not been set.
    pub const UNSET: u16 = u16::MAX;
}

impl Default for LayerOffsets {
    fn default() -> Self {
        LayerOffsets {
            l2: 0,
            l3: Self::UNSET,
            l4: Self::UNSET,
            payload: Self::UNSET,
        }
    }
}

/// A transport protocol whose checksum a [`TxRequest`] covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4Protocol {
    /// TCP: checksum at offset 16 of the header.
    Tcp,
    /// UDP: checksum at offset 6 of the header.
    Udp,
}

/// Transmit work a packet asks of the port that sends it: the IPv4 header
/// checksum, the TCP or UDP checksum, TCP segmentation (TSO).
///
/// **Who sets what.** The stage that builds an outgoing packet (IP/TCP
/// output, or the application) writes the final headers with the checksum
/// fields left as they are, sets [`Meta::layers`] (`l3` and `l4`; for TSO
/// the TCP header is found at `l4`) and asks for the work here. The port's
/// transmit path (through [`tpa::port::offload`](crate::port::offload))
/// hands what the device offloads to the device, does the rest in software
/// and clears the request. Receiving ports always deliver an empty request.
///
/// The request is four bytes, and "nothing asked" is one byte compare, so
/// ports check it on every packet.
///
/// ```
/// use tpa::buf::{L4Protocol, Meta};
/// let mut meta = Meta::default();
/// assert!(meta.tx.is_empty());
/// meta.tx.request_checksums(L4Protocol::Tcp).request_tso(1448);
/// assert!(meta.tx.wants_ipv4_checksum());
/// assert_eq!(meta.tx.l4_checksum(), Some(L4Protocol::Tcp));
/// assert_eq!(meta.tx.tso_mss(), Some(1448));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxRequest {
    /// `TxRequest::IPV4 | TCP | UDP | TSO` bits; zero when nothing is asked.
    flags: u8,
    /// The TSO segment payload size; meaningful with the `TSO` bit.
    mss: u16,
}

impl TxRequest {
    const IPV4: u8 = 1;
    const TCP: u8 = 2;
    const UDP: u8 = 4;
    const TSO: u8 = 8;

    /// Nothing asked.
    pub const NONE: TxRequest = TxRequest { flags: 0, mss: 0 };

    /// Asks for the IPv4 header checksum. Satisfied by nothing on IPv6
    /// packets, whose header has no checksum.
    #[inline]
    pub fn request_ipv4_checksum(&mut self) -> &mut Self {
        self.flags |= Self::IPV4;
        self
    }

    /// Asks for the TCP or UDP checksum (over the IPv4 or IPv6
    /// pseudo-header), replacing an earlier L4 choice. Asking for UDP
    /// cancels a TSO request.
    #[inline]
    pub fn request_l4_checksum(&mut self, proto: L4Protocol) -> &mut Self {
        self.flags &= !(Self::TCP | Self::UDP);
        match proto {
            L4Protocol::Tcp => self.flags |= Self::TCP,
            L4Protocol::Udp => {
                self.flags = (self.flags & !Self::TSO) | Self::UDP;
                self.mss = 0;
            }
        }
        self
    }

    /// Asks for every checksum of an IP packet carrying `proto`: the IPv4
    /// header checksum (where there is one) and the L4 checksum.
    #[inline]
    pub fn request_checksums(&mut self, proto: L4Protocol) -> &mut Self {
        self.request_ipv4_checksum().request_l4_checksum(proto)
    }

    /// Asks for the TCP payload to be cut into segments of at most `mss`
    /// bytes, each with fixed lengths, sequence numbers, flags and
    /// checksums. Implies the TCP checksum (and, on IPv4, the header
    /// checksum of every segment). `mss == 0` cancels segmentation.
    #[inline]
    pub fn request_tso(&mut self, mss: u16) -> &mut Self {
        if mss == 0 {
            self.flags &= !Self::TSO;
        } else {
            self.flags = (self.flags & !Self::UDP) | Self::TCP | Self::TSO;
        }
        self.mss = mss;
        self
    }

    /// Forgets every request.
    #[inline]
    pub fn clear(&mut self) {
        *self = Self::NONE;
    }

    /// Whether nothing is asked.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.flags == 0
    }

    /// Whether the IPv4 header checksum is asked for.
    #[inline]
    pub fn wants_ipv4_checksum(&self) -> bool {
        self.flags & Self::IPV4 != 0
    }

    /// The transport protocol whose checksum is asked for, if any.
    #[inline]
    pub fn l4_checksum(&self) -> Option<L4Protocol> {
        if self.flags & Self::TCP != 0 {
            Some(L4Protocol::Tcp)
        } else if self.flags & Self::UDP != 0 {
            Some(L4Protocol::Udp)
        } else {
            None
        }
    }

    /// The TSO segment size, if segmentation is asked for.
    #[inline]
    pub fn tso_mss(&self) -> Option<u16> {
        (self.flags & Self::TSO != 0).then_some(self.mss)
    }
}

/// Metadata of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// IPv4 header checksum as seen by the device.
    pub l3_checksum: ChecksumStatus,
    /// TCP/UDP checksum as seen by the device.
    pub l4_checksum: ChecksumStatus,
    /// RSS hash computed by the device (or the port), if any.
    pub rss_hash: Option<u32>,
    /// Flow mark set by a matching flow rule, if any.
    pub flow_mark: Option<u32>,
    /// Parsed layer offsets.
    pub layers: LayerOffsets,
    /// Receive time in nanoseconds of the port's clock, 0 if unknown.
    pub rx_timestamp_ns: u64,
    /// The queue the packet arrived on.
    pub rx_queue: u16,
    /// Checksums and segmentation the packet asks of the transmitting port.
    pub tx: TxRequest,
}

/// What [`Meta::default`] gives: no checksum status, hash, mark or
/// timestamp, no layer parsed, queue 0, nothing asked of the port.
///
/// One constant, so a reset is a copy of its bytes: a few wide stores
/// (the unset options' payload bytes copied along), where the field-wise
/// default writes each field around those bytes, one store apiece.
const FRESH: Meta = Meta {
    l3_checksum: ChecksumStatus::Unknown,
    l4_checksum: ChecksumStatus::Unknown,
    rss_hash: None,
    flow_mark: None,
    layers: LayerOffsets {
        l2: 0,
        l3: LayerOffsets::UNSET,
        l4: LayerOffsets::UNSET,
        payload: LayerOffsets::UNSET,
    },
    rx_timestamp_ns: 0,
    rx_queue: 0,
    tx: TxRequest::NONE,
};

impl Default for Meta {
    #[inline]
    fn default() -> Self {
        FRESH
    }
}

// A request must fit in the padding of Meta, which must keep the pool's
// buffer header within one cache line.
const _: () = assert!(core::mem::size_of::<TxRequest>() == 4);
const _: () = assert!(core::mem::size_of::<Meta>() <= 40);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_every_field_at_its_default() {
        let m = Meta::default();
        assert_eq!(m.l3_checksum, ChecksumStatus::default());
        assert_eq!(m.l4_checksum, ChecksumStatus::default());
        assert_eq!(m.rss_hash, None);
        assert_eq!(m.flow_mark, None);
        assert_eq!(m.layers, LayerOffsets::default());
        assert_eq!(m.rx_timestamp_ns, 0);
        assert_eq!(m.rx_queue, 0);
        assert_eq!(m.tx, TxRequest::default());
    }
}
