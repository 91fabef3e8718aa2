//! What a port is and what it can offload.

use crate::wire::MacAddr;

/// Offloads a device performs (receive checks or transmit work).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offloads {
    /// IPv4 header checksum.
    pub ipv4_checksum: bool,
    /// TCP checksum.
    pub tcp_checksum: bool,
    /// UDP checksum.
    pub udp_checksum: bool,
    /// TCP segmentation (transmit only).
    pub tso: bool,
}

/// The identity and abilities of a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortCaps {
    /// A human-readable name: the interface, vdev or wire end.
    pub name: String,
    /// The device's MAC address.
    pub mac: MacAddr,
    /// The largest IP packet the device carries (excluding the Ethernet header).
    pub mtu: u16,
    /// Queue pairs the device was set up with.
    pub queues: u16,
    /// Which queue this port value drives.
    pub queue: u16,
    /// Checks done on receive.
    pub rx_offloads: Offloads,
    /// Work done on transmit.
    pub tx_offloads: Offloads,
    /// The device spreads flows over queues by hash.
    pub rss: bool,
    /// The device accepts flow steering rules.
    pub flow_rules: bool,
}
