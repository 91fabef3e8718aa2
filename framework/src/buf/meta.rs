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
    pub l2: u16,
    pub l3: u16,
    pub l4: u16,
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

/// Metadata of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
}
