//! Ethernet II frames (IEEE 802.3 with an EtherType) and 802.1Q VLAN tags.
//!
//! ```
//! use tpa::wire::ethernet::{EtherType, Ethernet, EthernetView};
//! use tpa::wire::MacAddr;
//!
//! let mut frame = [0u8; 60];
//! let eth = Ethernet {
//!     dst: MacAddr::BROADCAST,
//!     src: MacAddr([2, 0, 0, 0, 0, 1]),
//!     ether_type: EtherType::Arp,
//! };
//! assert_eq!(eth.emit(&mut frame).unwrap(), Ethernet::LEN);
//! let view = EthernetView::new(&frame[..]).unwrap();
//! assert_eq!(view.ether_type(), EtherType::Arp);
//! assert!(view.dst().is_broadcast());
//! assert_eq!(view.payload().len(), 60 - 14);
//! ```

use crate::header;
use crate::wire::MacAddr;

crate::field_enum! {
    /// The protocol an Ethernet frame (or a VLAN tag) carries next.
    pub enum EtherType: u16 {
        /// Internet Protocol version 4.
        Ipv4 = 0x0800,
        /// Address Resolution Protocol.
        Arp = 0x0806,
        /// An IEEE 802.1Q VLAN tag follows.
        Vlan = 0x8100,
        /// An IEEE 802.1ad service VLAN tag (QinQ) follows.
        QinQ = 0x88a8,
        /// Internet Protocol version 6.
        Ipv6 = 0x86dd,
    }
}

/// An Ethernet II header: destination, source, EtherType (14 bytes).
#[header]
pub struct Ethernet {
    /// Destination MAC address.
    pub dst: MacAddr,
    /// Source MAC address.
    pub src: MacAddr,
    /// What the payload holds.
    #[field(u16)]
    pub ether_type: EtherType,
}

/// An IEEE 802.1Q tag as it follows an Ethernet header whose EtherType is
/// [`EtherType::Vlan`] (or [`EtherType::QinQ`]): tag control information,
/// then the EtherType of what follows the tag (4 bytes).
#[header]
pub struct VlanTag {
    /// Priority code point (IEEE 802.1p class of service).
    pub pcp: u3,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier (0 = priority tag only, 4095 reserved).
    pub vid: u12,
    /// What follows the tag.
    #[field(u16)]
    pub ether_type: EtherType,
}
