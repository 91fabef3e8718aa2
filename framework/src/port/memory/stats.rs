//! Counters of one lane (one direction) of a wire.

/// Packets lost on one lane, by cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drops {
    /// Random loss ([`Impairment::drop`](super::Impairment::drop)).
    pub random: u64,
    /// The direction was partitioned.
    pub partition: u64,
    /// Tail-dropped at the bandwidth queue limit.
    pub queue: u64,
    /// Longer than the MTU (plus Ethernet and VLAN headers).
    pub oversize: u64,
    /// Corrupted on a link whose receiver checks the FCS
    /// ([`Corruption::Fcs`](super::Corruption::Fcs)).
    pub fcs: u64,
    /// A chained frame to truncate or corrupt found no free buffer for the
    /// copy made first (segments shared with another holder, such as the
    /// sender's retransmission queue, are never written).
    pub no_buffer: u64,
}

impl Drops {
    /// All drops.
    pub fn total(&self) -> u64 {
        self.random + self.partition + self.queue + self.oversize + self.fcs + self.no_buffer
    }
}

/// Counters of one lane (one direction) of a [`MemoryWire`](super::MemoryWire).
///
/// Packets are conserved: `sent + duplicated == delivered + dropped.total()
/// + in_flight` (plus packets discarded by [`MemoryWire::clear`](super::MemoryWire::clear)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LaneStats {
    /// Packets taken by `tx_burst`.
    pub sent: u64,
    /// Packets handed out by `rx_burst`.
    pub delivered: u64,
    /// Packets lost, by cause.
    pub dropped: Drops,
    /// Extra copies created.
    pub duplicated: u64,
    /// Copies not made because the pool was empty.
    pub duplicate_failed: u64,
    /// Packets held back behind later ones.
    pub reordered: u64,
    /// Packets with flipped bits (delivered, or dropped as `dropped.fcs`).
    pub corrupted: u64,
    /// Packets cut short.
    pub truncated: u64,
    /// Packets on the wire now (delayed, held back, or waiting in a receive
    /// ring).
    pub in_flight: u64,
}
